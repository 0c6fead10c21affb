import { pino } from 'pino';

/** Logger is the logging surface pawledger uses (pino's). */
export type Logger = pino.Logger;

/** REDACT lists the fields that must never reach a log line. */
export const REDACT = [
  'key',
  'encryptionKey',
  'password',
  'token',
  'adminToken',
  'authorization',
  'databaseUrl',
  '*.key',
  '*.encryptionKey',
  '*.password',
  '*.token',
  '*.adminToken',
  '*.authorization',
  '*.databaseUrl',
  'req.headers.authorization',
];

/** createLogger makes the process logger: JSON lines, or human lines with format 'pretty'. */
export function createLogger(options: { format: 'json' | 'pretty'; level: string; destination?: number }): Logger {
  const base = { level: options.level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (options.format === 'pretty') {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { destination: options.destination ?? 1, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' },
      },
    });
  }
  return pino(base, pino.destination({ dest: options.destination ?? 1, sync: true }));
}

/** silentLogger is the default for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
