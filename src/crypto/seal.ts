import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { IntegrityError } from '../errors.js';
import type { EncryptionKey } from './key.js';

/**
 * The sealed-object format (docs/FORMAT.md): pure code, no I/O.
 *
 *   offset 0   4 bytes  magic "PWLS"
 *          4   1 byte   format version (1)
 *          5   1 byte   algorithm (1 = AES-256-GCM)
 *          6   4 bytes  key id
 *         10  12 bytes  nonce
 *         22   n bytes  ciphertext
 *       22+n  16 bytes  GCM tag
 *
 * The associated data is the 22-byte header followed by the UTF-8 context line, so an object moved to another
 * ledger, height, hash or kind, or re-headed with another key id, fails to open.
 */
export const MAGIC = Buffer.from('PWLS', 'latin1');
export const FORMAT_VERSION = 1;
export const ALG_AES_256_GCM = 1;
export const HEADER_BYTES = 22;
export const TAG_BYTES = 16;
/** OVERHEAD is what sealing adds to a plaintext's length. */
export const OVERHEAD = HEADER_BYTES + TAG_BYTES;

/** ObjectKind says what a sealed object holds; it is part of the bound context. */
/**
 * 'pack' is the IPFS tier's first pack format (sealed blocks framed, sealed again); 'packed-blocks' is a pack of block
 * bodies (crypto/packs.ts), what every tier keeps of settled blocks; 'checkpoint' a world state (crypto/checkpoints.ts).
 */
export type ObjectKind = 'block' | 'pack' | 'packed-blocks' | 'checkpoint' | 'export' | 'backup-record' | 'manifest';

/** SealContext is what an object is, bound to its ciphertext as associated data. */
export interface SealContext {
  readonly ledgerId: string;
  readonly kind: ObjectKind;
  readonly height: number;
  readonly hash: string;
}

/** describeContext names an object for an operator, e.g. "block 42 (ab12cd34…)". */
export function describeContext(ctx: SealContext): string {
  return `${ctx.kind} ${ctx.height} (${ctx.hash.slice(0, 16)}) of ledger ${ctx.ledgerId.slice(0, 16)}`;
}

function contextBytes(ctx: SealContext): Buffer {
  return Buffer.from(`pawledger\0${ctx.ledgerId}\0${ctx.kind}\0${ctx.height}\0${ctx.hash}`, 'utf8');
}

// Nonces come from a pool refilled from the CSPRNG in 4 KiB gulps: one getrandom call per 341 seals, not one each.
const noncePool = Buffer.alloc(4092);
let noncePos = noncePool.length;
function nextNonce(into: Buffer, at: number): void {
  if (noncePos + 12 > noncePool.length) {
    randomFillSync(noncePool);
    noncePos = 0;
  }
  noncePool.copy(into, at, noncePos, noncePos + 12);
  noncePos += 12;
}

/**
 * Sealer seals with one key, the active one, and opens with any key of its keyring: the active key and the previous
 * keys (LEDGER_PREVIOUS_KEYS) that may still open older objects. The key id in every sealed header says which key
 * opens it, so opening never tries keys in turn.
 */
export class Sealer {
  /** keyId is the active key's id: what new objects are sealed with. */
  readonly keyId: string;
  readonly #key: Buffer;
  readonly #keyIdBytes: Buffer;
  /** #ring maps every key id of the keyring (the active one included) to its key. */
  readonly #ring = new Map<string, Buffer>();

  constructor(key: EncryptionKey, previous: readonly EncryptionKey[] = []) {
    this.#key = key.bytes;
    this.keyId = key.id;
    this.#keyIdBytes = Buffer.from(key.id, 'hex');
    this.#ring.set(key.id, key.bytes);
    for (const k of previous) if (!this.#ring.has(k.id)) this.#ring.set(k.id, k.bytes);
  }

  /** keyIds are the ids of the keyring: the active key's first, then the previous keys'. */
  get keyIds(): string[] {
    return [...this.#ring.keys()];
  }

  /** previousKeyIds are the ids of the keys that may open older objects but seal nothing. */
  get previousKeyIds(): string[] {
    return this.keyIds.filter((id) => id !== this.keyId);
  }

  /**
   * forWorker is this sealer's keyring (active key first), to build the same Sealer in a worker thread of this
   * process (a structured clone within the process: it never leaves memory). Nothing else may call it.
   */
  forWorker(): EncryptionKey[] {
    return [...this.#ring].map(([id, bytes]) => ({ id, bytes }));
  }

  /** fromWorker builds, in a worker thread, the Sealer whose forWorker() it was given. */
  static fromWorker(keys: readonly { bytes: Uint8Array; id: string }[]): Sealer {
    const [active, ...previous] = keys.map((k) => ({ bytes: Buffer.from(k.bytes), id: k.id }));
    return new Sealer(active!, previous);
  }

  /** seal encrypts plaintext and binds ctx; the result is self-describing apart from ctx. */
  seal(ctx: SealContext, plaintext: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(HEADER_BYTES + plaintext.length + TAG_BYTES);
    MAGIC.copy(out, 0);
    out[4] = FORMAT_VERSION;
    out[5] = ALG_AES_256_GCM;
    this.#keyIdBytes.copy(out, 6);
    nextNonce(out, 10);
    const header = out.subarray(0, HEADER_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, out.subarray(10, 22));
    cipher.setAAD(Buffer.concat([header, contextBytes(ctx)]));
    let n = HEADER_BYTES + cipher.update(plaintext).copy(out, HEADER_BYTES);
    n += cipher.final().copy(out, n);
    cipher.getAuthTag().copy(out, n);
    return out;
  }

  /**
   * reseal opens an object sealed under any key of the keyring and seals its plaintext again under the active key,
   * bound to the same context (key rotation). An object already under the active key comes back as it is. Anything
   * that does not open throws IntegrityError as open() does: nothing unauthenticated is ever sealed again.
   */
  reseal(ctx: SealContext, sealed: Uint8Array, where?: string): Buffer {
    const buf = Buffer.isBuffer(sealed) ? sealed : Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const body = this.open(ctx, buf, where);
    return sealedKeyId(buf) === this.keyId ? buf : this.seal(ctx, body);
  }

  /**
   * open decrypts a sealed object and checks it against ctx. Any mismatch (not a sealed object, another key, another
   * context, a changed byte) throws IntegrityError naming the object; it never returns unauthenticated bytes.
   */
  open(ctx: SealContext, sealed: Uint8Array, where?: string): Buffer {
    const name = where ? `${describeContext(ctx)} at ${where}` : describeContext(ctx);
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (buf.length < OVERHEAD || !buf.subarray(0, 4).equals(MAGIC)) {
      throw new IntegrityError(`${name} is not a pawledger sealed object`);
    }
    if (buf[4] !== FORMAT_VERSION || buf[5] !== ALG_AES_256_GCM) {
      throw new IntegrityError(`${name} has unknown format version ${buf[4]} / algorithm ${buf[5]}`);
    }
    const objectKeyId = buf.subarray(6, 10).toString('hex');
    const key = this.#ring.get(objectKeyId);
    if (!key) {
      const held = this.previousKeyIds.length
        ? `the keyring holds ${this.keyId} (active) and ${this.previousKeyIds.join(', ')} (previous)`
        : `the configured key is ${this.keyId}`;
      throw new IntegrityError(`${name} was sealed with key ${objectKeyId}, but ${held}`, {
        hint: `Set LEDGER_ENCRYPTION_KEY to the key with id ${objectKeyId}, or add it to LEDGER_PREVIOUS_KEYS (pawledger doctor shows a key's id); if no key of yours ever had that id, the object's header was altered: restore it from another tier`,
      });
    }
    const tagAt = buf.length - TAG_BYTES;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(10, 22));
      decipher.setAAD(Buffer.concat([buf.subarray(0, HEADER_BYTES), contextBytes(ctx)]));
      decipher.setAuthTag(buf.subarray(tagAt));
      const body = decipher.update(buf.subarray(HEADER_BYTES, tagAt));
      const tail = decipher.final();
      return tail.length === 0 ? body : Buffer.concat([body, tail]);
    } catch (cause) {
      throw new IntegrityError(`${name} failed authentication: its bytes or its context were altered`, { cause });
    }
  }
}

/** sealedKeyId reads the id of the key that sealed an object from its header, or null if it is not a sealed object. */
export function sealedKeyId(sealed: Uint8Array): string | null {
  if (sealed.length < OVERHEAD) return null;
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  return buf.subarray(0, 4).equals(MAGIC) ? buf.subarray(6, 10).toString('hex') : null;
}
