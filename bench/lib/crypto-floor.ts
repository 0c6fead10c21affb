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

/** aesThroughput encrypts `calls` buffers of `bytes` per run, one message each: MB/s (10^6 bytes) per run. */
export function aesThroughput(runs: number, calls: number, bytes = 64 * 1024): CryptoFloor {
  const buf = randomBytes(bytes);
  const out: number[] = [];
  for (let r = 0; r < runs; r++) out.push((calls * bytes) / 1e6 / (timed(calls, () => gcmEncrypt(buf)) / 1000));
  return { name: `AES-256-GCM (node:crypto), ${bytes / 1024} KiB messages`, unit: 'MB/s', runs: out, calls };
}

/** aesPerCall is the cost of one AES-256-GCM message of `bytes` (a block's size), in microseconds, per run. */
export function aesPerCall(runs: number, calls: number, bytes = 560): CryptoFloor {
  const buf = randomBytes(bytes);
  const out: number[] = [];
  for (let r = 0; r < runs; r++) out.push((timed(calls, () => gcmEncrypt(buf)) * 1000) / calls);
  return { name: `AES-256-GCM (node:crypto), one ${bytes}-byte message`, unit: 'us/call', runs: out, calls };
}

/**
 * sealerPerCall is the cost of pawledger's Sealer.seal and Sealer.open of one block (header, nonce, bound context as
 * associated data, AES-256-GCM), in microseconds per call, per run. `body` is a real block's canonical body.
 */
export function sealerPerCall(sealer: Sealer, runs: number, calls: number, body: Buffer): CryptoFloor[] {
  const bytes = body.length;
  const ctx = { ledgerId: 'ab'.repeat(32), kind: 'block' as const, height: 123_456, hash: 'cd'.repeat(32) };
  const sealed = sealer.seal(ctx, body);
  const seal: number[] = [];
  const open: number[] = [];
  for (let r = 0; r < runs; r++) {
    seal.push((timed(calls, () => sealer.seal(ctx, body)) * 1000) / calls);
    open.push((timed(calls, () => sealer.open(ctx, sealed)) * 1000) / calls);
  }
  return [
    { name: `pawledger Sealer.seal of one benchmark block (${bytes}-byte body, ${sealed.length} bytes sealed)`, unit: 'us/call', runs: seal, calls },
    { name: `pawledger Sealer.open of the same sealed block`, unit: 'us/call', runs: open, calls },
  ];
}
