import { IntegrityError } from '../errors.js';
import { encodeState, StateDecoder } from '../ledger/state-codec.js';
import type { WorldState } from '../ledger/state.js';
import type { Sealer } from './seal.js';

/**
 * Checkpoints (docs/FORMAT.md): the world state after block `height` (hash `hash`), sealed in parts so that neither
 * sealing nor opening a large state holds it twice. Each part's stored form is
 *   index u32 LE | last u8 (1 on the final part) | 3 reserved | sealed object
 * sealed as kind 'checkpoint' bound to the block's height and to `<hash>#<index>` (`#last` added on the final part),
 * so parts cannot be reordered, dropped, cut short or moved to another block. The parts before the last hold the
 * state's encoding (ledger/state-codec.ts) chunk by chunk; the last holds the summary: the state digest and the
 * number of properties, which opening checks.
 */
export interface SealedCheckpoint {
  height: number;
  hash: string;
  parts: Buffer[];
}

/** CheckpointSummary is what a checkpoint says about its state. */
export interface CheckpointSummary {
  version: 1;
  digest: string;
  properties: number;
}

const PART_HEADER_BYTES = 8;
/** CHECKPOINT_PART_HEAD is the length of a stored part's own header, before its sealed object. */
export const CHECKPOINT_PART_HEAD = PART_HEADER_BYTES;

function partContext(ledgerId: string, height: number, hash: string, index: number, last: boolean) {
  return { ledgerId, kind: 'checkpoint' as const, height, hash: `${hash}#${index}${last ? '#last' : ''}` };
}

function part(
  sealer: Sealer,
  ledgerId: string,
  height: number,
  hash: string,
  index: number,
  last: boolean,
  body: Buffer,
) {
  const head = Buffer.alloc(PART_HEADER_BYTES);
  head.writeUInt32LE(index, 0);
  head[4] = last ? 1 : 0;
  return Buffer.concat([head, sealer.seal(partContext(ledgerId, height, hash, index, last), body)]);
}

/**
 * resealCheckpointPart is one stored part of the checkpoint after block `at`, sealed under the active key (key
 * rotation): same index, same place, same body. A part already under the active key comes back unchanged.
 */
export function resealCheckpointPart(
  sealer: Sealer,
  ledgerId: string,
  at: { height: number; hash: string },
  stored: Buffer,
  where?: string,
): Buffer {
  const name = `checkpoint at block ${at.height} (${at.hash.slice(0, 16)})${where ? ` in ${where}` : ''}`;
  if (stored.length < PART_HEADER_BYTES) throw new IntegrityError(`${name}: a part is cut short`);
  const index = stored.readUInt32LE(0);
  const last = stored[4] === 1;
  const sealed = stored.subarray(PART_HEADER_BYTES);
  const again = sealer.reseal(partContext(ledgerId, at.height, at.hash, index, last), sealed, name);
  return again === sealed ? stored : Buffer.concat([stored.subarray(0, PART_HEADER_BYTES), again]);
}

/** checkpointPartSealed is the sealed object inside one stored part (its header tells the key that sealed it). */
export function checkpointPartSealed(stored: Buffer): Buffer {
  return stored.subarray(PART_HEADER_BYTES);
}

/** sealCheckpoint seals the state as it stands now, which must be the state after the block with hash `hash`. */
export function sealCheckpoint(sealer: Sealer, ledgerId: string, hash: string, state: WorldState): SealedCheckpoint {
  const sealing = sealParts(sealer, ledgerId, hash, state);
  return { height: sealing.height, hash, parts: [...sealing.parts] };
}

/**
 * sealCheckpointBeside is sealCheckpoint for a state that blocks go on being applied to: it awaits `pause` between
 * parts (letting saves run), and holds the state as it was when called (WorldState.snapshot).
 */
export async function sealCheckpointBeside(
  sealer: Sealer,
  ledgerId: string,
  hash: string,
  state: WorldState,
  pause: () => Promise<void>,
): Promise<SealedCheckpoint> {
  const sealing = sealParts(sealer, ledgerId, hash, state);
  const parts: Buffer[] = [];
  for (const p of sealing.parts) {
    parts.push(p);
    await pause();
  }
  return { height: sealing.height, hash, parts };
}

// The parts of a checkpoint, sealed one by one as they are read: the state's chunks, then the summary.
function sealParts(sealer: Sealer, ledgerId: string, hash: string, state: WorldState) {
  const encoded = encodeState(state);
  const height = encoded.height;
  function* parts(): Generator<Buffer> {
    let index = 0;
    for (const chunk of encoded.chunks) yield part(sealer, ledgerId, height, hash, index++, false, chunk);
    const summary: CheckpointSummary = { version: 1, digest: encoded.digest(), properties: encoded.properties };
    yield part(sealer, ledgerId, height, hash, index, true, Buffer.from(JSON.stringify(summary)));
  }
  return { height, parts: parts() };
}

/** checkpointBytes is a checkpoint's stored size. */
export function checkpointBytes(cp: SealedCheckpoint): number {
  return cp.parts.reduce((n, p) => n + p.length, 0);
}

/**
 * openCheckpoint authenticates a checkpoint's parts as they stream in and rebuilds its state, checking the digest
 * and count its summary names. Anything missing, extra, reordered or altered throws IntegrityError naming `where`.
 */
export async function openCheckpoint(
  sealer: Sealer,
  ledgerId: string,
  at: { height: number; hash: string },
  parts: AsyncIterable<Buffer> | Iterable<Buffer>,
  where: string,
): Promise<{ state: WorldState; summary: CheckpointSummary }> {
  const name = `checkpoint at block ${at.height} (${at.hash.slice(0, 16)}) in ${where}`;
  const decoder = new StateDecoder(at.height, name);
  let index = 0;
  for await (const stored of parts) {
    if (stored.length < PART_HEADER_BYTES) throw new IntegrityError(`${name}: part ${index} is cut short`);
    const got = stored.readUInt32LE(0);
    const last = stored[4] === 1;
    if (got !== index) throw new IntegrityError(`${name}: part ${got} came where part ${index} belongs`);
    const body = sealer.open(
      partContext(ledgerId, at.height, at.hash, index, last),
      stored.subarray(PART_HEADER_BYTES),
      name,
    );
    index++;
    if (!last) {
      decoder.push(body);
      continue;
    }
    let summary: CheckpointSummary;
    try {
      summary = JSON.parse(body.toString('utf8')) as CheckpointSummary;
    } catch {
      throw new IntegrityError(`${name}: its summary is not JSON`);
    }
    if (summary.version !== 1 || typeof summary.digest !== 'string' || !Number.isSafeInteger(summary.properties))
      throw new IntegrityError(`${name}: its summary is malformed`);
    return { state: decoder.finish(summary), summary };
  }
  throw new IntegrityError(`${name}: its last part is missing (${index} parts read)`);
}
