import { createHash, randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';

/** KEY_BYTES is the size of a pawledger encryption key (AES-256). */
export const KEY_BYTES = 32;

/** EncryptionKey is a parsed key and its public id (the id may be logged; the key never). */
export interface EncryptionKey {
  readonly bytes: Buffer;
  /** id is 4 bytes derived from the key, hex encoded: it tells which key sealed an object without revealing it. */
  readonly id: string;
}

/** parseKey accepts 32 bytes written as 64 hex digits or as base64 (standard or url-safe, padding optional). */
export function parseKey(text: string, source = 'LEDGER_ENCRYPTION_KEY'): EncryptionKey {
  const trimmed = text.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) bytes = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(trimmed)) bytes = Buffer.from(trimmed, 'base64');
  if (!bytes || bytes.length !== KEY_BYTES) {
    throw new ConfigError(`${source} is not a 32-byte key (expected 64 hex digits or 44 base64 characters)`, {
      hint: 'Run `pawledger keygen` to print a new key',
    });
  }
  return { bytes, id: keyId(bytes) };
}

/** keyId derives the public 4-byte id of a key. */
export function keyId(bytes: Buffer): string {
  return createHash('sha256').update('pawledger key id\0').update(bytes).digest().subarray(0, 4).toString('hex');
}

/** generateKey makes a new random key, base64 encoded, ready for LEDGER_ENCRYPTION_KEY. */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/**
 * parseKeyList reads LEDGER_PREVIOUS_KEYS: keys separated by commas (spaces around them ignored), each as parseKey
 * accepts it. An entry that is not a key throws ConfigError naming its position, never the text.
 */
export function parseKeyList(text: string | undefined, source = 'LEDGER_PREVIOUS_KEYS'): EncryptionKey[] {
  if (!text?.trim()) return [];
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((t, i) => parseKey(t, `${source} entry ${i + 1}`));
}
