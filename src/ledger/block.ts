import { hash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { merkleRoot } from './merkle.js';
import { GENESIS_PREVIOUS_HASH, type Block, type BlockBody, type Transaction } from './types.js';

/** EncodedBlock is a block together with the exact canonical bytes its hash covers. */
export interface EncodedBlock {
  block: Block;
  /** body is the canonical JSON of the block without its hash (UTF-8): what is sealed and stored. */
  body: Buffer;
}

/** sha256Hex hashes bytes or a string to lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  // One-shot (Node 20.12+): several times cheaper than createHash for the small inputs a block is.
  return hash('sha256', data, 'hex');
}

/** encodeBody renders a block body canonically; its SHA-256 is the block's hash. */
export function encodeBody(body: BlockBody): Buffer {
  const { index, timestamp, transactions, previousHash, merkleRoot: root } = body;
  return Buffer.from(canonicalJson({ index, timestamp, transactions, previousHash, merkleRoot: root }), 'utf8');
}

/** makeBlock builds the block that follows `previous` (or the genesis block when previous is null). */
export function makeBlock(previous: Block | null, transactions: Transaction[], timestamp: string): EncodedBlock {
  const body: BlockBody = {
    index: previous ? previous.index + 1 : 0,
    timestamp,
    transactions,
    previousHash: previous ? previous.hash : GENESIS_PREVIOUS_HASH,
    merkleRoot: merkleRoot(transactions),
  };
  const bytes = encodeBody(body);
  return { block: { ...body, hash: sha256Hex(bytes) }, body: bytes };
}

const HEX = /^[0-9a-f]{64}$/;

/**
 * previousHashOf reads the previousHash of the block at `height` straight from its canonical body, without parsing
 * it: the keys sort as index, merkleRoot, previousHash, so the body starts
 * `{"index":<height>,"merkleRoot":"<64 hex>","previousHash":"<64 hex>",`. It returns null for a body not shaped so.
 */
export function previousHashOf(body: Buffer, height: number): string | null {
  const head = `{"index":${height},"merkleRoot":"`;
  const at = head.length + 64;
  const mid = '","previousHash":"';
  if (body.length < at + mid.length + 66 || body.toString('latin1', 0, head.length) !== head) return null;
  if (body.toString('latin1', at, at + mid.length) !== mid || body[at + mid.length + 64] !== 0x22) return null;
  const hash = body.toString('latin1', at + mid.length, at + mid.length + 64);
  return HEX.test(hash) ? hash : null;
}

/**
 * decodeBody parses stored canonical bytes back into a block. The hash is the SHA-256 of the bytes as stored, so
 * nothing is re-serialized here; verifyLink checks the result against its neighbours and its Merkle root.
 */
export function decodeBody(body: Uint8Array): Block {
  const parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as BlockBody;
  return { ...parsed, hash: sha256Hex(body) };
}
