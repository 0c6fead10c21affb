import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { buildServer } from '../server/app.js';
import { verifyInWorker } from '../server/verify-thread.js';
import type { CliContext } from './context.js';

/**
 * serve restores the ledger and serves the HTTP API until SIGTERM or SIGINT, then finishes in-flight saves, closes
 * the store and releases its lock before exiting.
 */
export async function serve(ctx: CliContext): Promise<number> {
  const { config, log } = ctx;
  if (config.onRender) log.info('Running on Render deployment');
  let adminToken = config.adminToken;
  if (!adminToken) {
    if (config.onRender) {
      throw new ConfigError('ADMIN_TOKEN is not set', {
        hint: 'Set ADMIN_TOKEN to a long random string (for example `openssl rand -hex 32`) in the service environment',
      });
    }
    adminToken = randomBytes(24).toString('base64url');
    // Printed once, on stderr, outside the logger: it is a secret and must not land in log aggregation as a field.
    process.stderr.write(
      `\nADMIN_TOKEN is not set: generated one for this run. Send it as "Authorization: Bearer ${adminToken}"\n\n`,
    );
  }
  const ledger = await ctx.openLedger();
  // GET /chain/verify verifies on a worker thread: a long chain must not stall the event loop that answers /healthz.
  const app = buildServer(ledger, { adminToken, logger: log, ...config.http, verify: verifyInWorker(config) });
  let stopping: Promise<void> | null = null;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log.info({ signal }, `Received ${signal}: finishing in-flight saves and shutting down`);
      await app.close();
      await ledger.close();
      log.info('Shut down cleanly');
    })();
    return stopping;
  };
  try {
    const address = await app.listen({ host: config.host, port: config.port });
    const s = ledger.status();
    log.info({ address, height: s.height, totalProperties: s.totalProperties }, `pawledger serving on ${address}`);
    ledger.startRetention();
  } catch (err) {
    await ledger.close();
    throw err;
  }
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await stop(signal);
  return 0;
}
