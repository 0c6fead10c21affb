import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { atomicWrite } from '../store/fsutil.js';
import { generateKey, parseKey, parseKeyList, type EncryptionKey } from '../crypto/key.js';
import { Sealer } from '../crypto/seal.js';

/** GENERATED_KEY_FILE is where a development key lives inside the data folder. */
export const GENERATED_KEY_FILE = 'ledger.key';

/**
 * resolveKey finds the encryption key: LEDGER_ENCRYPTION_KEY when set. Without it, a development setup (no remote
 * tier, not on Render) uses a key kept in the data folder, generated there (mode 0600) on first use with a loud
 * warning. A setup with a remote tier, or on Render, refuses: a key on an ephemeral disk would leave every remote
 * backup unreadable after the next deploy.
 */
export async function resolveKey(
  config: Config,
  log: Logger,
  options: { generate: boolean } = { generate: true },
): Promise<EncryptionKey> {
  if (config.encryptionKey) return parseKey(config.encryptionKey);
  if (config.onRender || config.remoteTiers.length > 0) {
    const why = config.onRender
      ? 'on Render (RENDER=true) the disk is wiped at each deploy'
      : `${config.remoteTiers.join(' and ')} is configured`;
    throw new ConfigError(
      `LEDGER_ENCRYPTION_KEY is not set, and ${why}, so a generated key would be lost with this machine`,
      {
        hint: 'Run `pawledger keygen` and set its output as LEDGER_ENCRYPTION_KEY in the environment (keep a copy somewhere safe)',
      },
    );
  }
  const path = join(config.dataDir, GENERATED_KEY_FILE);
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (existing !== null) {
    await chmod(path, 0o600);
    return parseKey(existing, path);
  }
  if (!options.generate) {
    throw new ConfigError(`LEDGER_ENCRYPTION_KEY is not set and there is no ${path}`, {
      hint: "Set LEDGER_ENCRYPTION_KEY to the ledger's key",
    });
  }
  await atomicWrite(path, Buffer.from(`${generateKey()}\n`), 0o600);
  log.warn(
    { keyFile: path },
    `!!! LEDGER_ENCRYPTION_KEY is not set: generated a development key in ${path}. Anyone who loses this file loses the ledger. ` +
      'Run `pawledger keygen` and set LEDGER_ENCRYPTION_KEY before using a remote tier or deploying.',
  );
  return parseKey(await readFile(path, 'utf8'), path);
}

/**
 * resolveSealer is the Sealer of this configuration: the active key (resolveKey) and the previous keys of
 * LEDGER_PREVIOUS_KEYS, which open older objects and seal nothing.
 */
export async function resolveSealer(
  config: Config,
  log: Logger,
  options: { generate: boolean } = { generate: true },
): Promise<Sealer> {
  const previous = parseKeyList(config.previousKeys);
  return new Sealer(await resolveKey(config, log, options), previous);
}
