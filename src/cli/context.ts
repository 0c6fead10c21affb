import { loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { Ledger } from '../service/ledger.js';

/** CliContext is what every command needs: configuration, a logger, and a way to open the ledger. */
export interface CliContext {
  config: Config;
  log: Logger;
  /** openLedger opens the ledger for writing (taking its lock) or, with readOnly, beside a running server. */
  openLedger(options?: { readOnly?: boolean; deferBackground?: boolean }): Promise<Ledger>;
}

/** createContext reads the environment. Commands log to stderr, so that stdout carries only their output. */
export function createContext(options: { logTo: 'stdout' | 'stderr' }): CliContext {
  const config = loadConfig();
  const log = createLogger({
    format:
      config.logFormat === 'pretty' || (process.env.LOG_FORMAT === undefined && process.stderr.isTTY)
        ? 'pretty'
        : 'json',
    level: config.logLevel,
    destination: options.logTo === 'stdout' ? 1 : 2,
  });
  return {
    config,
    log,
    openLedger: (o = {}) =>
      Ledger.open({ config, logger: log, readOnly: o.readOnly ?? false, deferBackground: o.deferBackground ?? false }),
  };
}

/** withLedger opens the ledger, runs fn, and closes the ledger whatever happens. */
export async function withLedger<T>(
  ctx: CliContext,
  readOnly: boolean,
  fn: (ledger: Ledger) => Promise<T>,
): Promise<T> {
  const ledger = await ctx.openLedger({ readOnly });
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
  }
}
