import { randomBytes } from 'node:crypto';
import { ConfigError, describeError } from '../errors.js';
import { buildServer } from '../server/app.js';
import { openControlChannel, type ControlChannel } from '../server/control-server.js';
import { verifyInWorker } from '../server/verify-thread.js';
import { reportProgress } from '../util/progress.js';
import { AlertMonitor } from '../service/alerts.js';
import type { CliContext } from './context.js';
import { progressLog } from './progress.js';

/**
 * serve restores the ledger and serves the HTTP API, and the control channel for commands run beside it on this
 * machine (`<dataDir>/control.sock`), until SIGTERM or SIGINT; then it finishes in-flight saves, removes the socket,
 * closes the store and releases its lock before exiting.
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
  // A long startup restore (a fresh disk on every deploy) logs how far it is every few seconds.
  // The full replay and the accumulator's rebuild wait until it listens: they would slow its start on the one thread.
  const ledger = await reportProgress(progressLog(log, config.progressLogMs), () =>
    ctx.openLedger({ deferBackground: true }),
  );
  // GET /chain/verify verifies on a worker thread: a long chain must not stall the event loop that answers /healthz.
  const verify = verifyInWorker(config);
  const app = buildServer(ledger, {
    adminToken,
    metricsToken: config.assurance.metricsToken,
    logger: log,
    ...config.http,
    verify,
  });
  let control: ControlChannel | null = null;
  const { alertWebhookUrl, alertCheckMs, alertFailingMs } = config.assurance;
  const alerts = alertWebhookUrl
    ? new AlertMonitor(ledger, { url: alertWebhookUrl, checkMs: alertCheckMs, failingMs: alertFailingMs, log })
    : null;
  let stopping: Promise<void> | null = null;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log.info({ signal }, `Received ${signal}: finishing in-flight saves and shutting down`);
      await Promise.all([app.close(), control?.close(), alerts?.stop()]);
      await ledger.close();
      log.info('Shut down cleanly');
    })();
    return stopping;
  };
  try {
    // Before the HTTP port: once serve says it serves, commands beside it find the channel.
    control = await openControlChannel(ledger, config.dataDir, { logger: log, ...config.http, verify }).catch((err) => {
      // The HTTP API is the service; without the channel, commands beside it are refused as before (LOCK).
      log.warn(
        { err: describeError(err) },
        `Control channel not opened (${describeError(err)}): commands that change the ledger must go through the HTTP API while this server runs`,
      );
      return null;
    });
    if (control)
      log.info(
        { path: control.path },
        `Control channel on ${control.path}: pawledger commands run on this machine as this user go through this server`,
      );
    const address = await app.listen({ host: config.host, port: config.port });
    const s = ledger.status();
    log.info({ address, height: s.height, totalProperties: s.totalProperties }, `pawledger serving on ${address}`);
    void ledger.startBackground();
    ledger.startRetention();
    alerts?.start();
    // With LEDGER_PREVIOUS_KEYS set, whatever is still under an old key is re-sealed behind the saves, logging progress.
    if (reportProgress(progressLog(log, config.progressLogMs), () => ledger.startRotation()))
      log.info(
        { keyId: ledger.status().keyId },
        `Key rotation: LEDGER_PREVIOUS_KEYS is set, so every object still under an old key is re-sealed with key ${ledger.status().keyId} in the background`,
      );
    if (ledger.startDrills())
      log.info(
        { intervalMs: config.assurance.drillIntervalMs, firstMs: config.assurance.drillFirstMs },
        `Restore drills: every tier's newest backup is restored and replayed in full every ${config.assurance.drillIntervalMs / 60_000} min, the first in ${Math.round(config.assurance.drillFirstMs / 1000)} s`,
      );
  } catch (err) {
    await control?.close();
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
