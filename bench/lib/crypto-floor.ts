import { createCipheriv, randomBytes } from 'node:crypto';
import type { Sealer } from '../../src/crypto/seal.js';

/** CryptoFloor is one cryptographic floor: a value per run, and its unit. */
export interface CryptoFloor {
  name: string;
  unit: 'MB/s' | 'us/call';
  runs: number[];
  /** calls is how many operations each run timed. */
  calls: number;
}

const key = randomBytes(32);
const iv = Buffer.alloc(12);
let counter = 0;

/** gcmEncrypt is one AES-256-GCM message with node:crypto (a fresh nonce each call): cipher, update, final, tag. */
function gcmEncrypt(plaintext: Buffer): number {
  iv.writeUInt32BE(counter++ >>> 0, 8);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const n = cipher.update(plaintext).length + cipher.final().length;
  return n + cipher.getAuthTag().length;
}

function timed(calls: number, fn: () => void): number {
  for (let i = 0; i < Math.min(calls, 200); i++) fn(); // warm-up
  const t = performance.now();
  for (let i = 0; i < calls; i++) fn();
  return performance.now() - t;
}

/**
 * cryptoFloors measures, `runs` times each: AES-256-GCM throughput on 64 KiB messages (MB/s, 10^6 bytes), the cost
 * of one AES-256-GCM message of 560 bytes (a block's order of size), and pawledger's Sealer.seal and Sealer.open of
 * one real block (header, nonce, bound context as associated data), in microseconds per call. The four are
 * interleaved, in rotating order from run to run, so a change in the machine's load falls on all of them alike.
 * `body` is a real block's canonical body; `bulkCalls` 64 KiB messages and `calls` small ones are timed per run.
 */
export function cryptoFloors(
  sealer: Sealer,
  body: Buffer,
  runs: number,
  bulkCalls: number,
  calls: number,
): CryptoFloor[] {
  const bulk = randomBytes(64 * 1024);
  const small = randomBytes(560);
  const ctx = { ledgerId: 'ab'.repeat(32), kind: 'block' as const, height: 123_456, hash: 'cd'.repeat(32) };
  const sealed = sealer.seal(ctx, body);
  const floors: (CryptoFloor & { once: () => number })[] = [
    {
      name: 'AES-256-GCM (node:crypto), 64 KiB messages',
      unit: 'MB/s',
      runs: [],
      calls: bulkCalls,
      once: () => (bulkCalls * bulk.length) / 1e6 / (timed(bulkCalls, () => gcmEncrypt(bulk)) / 1000),
    },
    {
      name: `AES-256-GCM (node:crypto), one ${small.length}-byte message`,
      unit: 'us/call',
      runs: [],
      calls,
      once: () => (timed(calls, () => gcmEncrypt(small)) * 1000) / calls,
    },
    {
      name: `pawledger Sealer.seal of one benchmark block (${body.length}-byte body, ${sealed.length} bytes sealed)`,
      unit: 'us/call',
      runs: [],
      calls,
      once: () => (timed(calls, () => sealer.seal(ctx, body)) * 1000) / calls,
    },
    {
      name: 'pawledger Sealer.open of the same sealed block',
      unit: 'us/call',
      runs: [],
      calls,
      once: () => (timed(calls, () => sealer.open(ctx, sealed)) * 1000) / calls,
    },
  ];
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < floors.length; k++) {
      const f = floors[(k + r) % floors.length]!;
      f.runs.push(f.once());
    }
  }
  return floors.map(({ name, unit, runs: values, calls: c }) => ({ name, unit, runs: values, calls: c }));
}
