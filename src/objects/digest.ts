import { createHash } from 'node:crypto';

/** sha256Hex is the lowercase hex SHA-256 of bytes: what a named store records and checks an object against. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
