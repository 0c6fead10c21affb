import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors.js';
import { WorldState, type StateEntry } from './state.js';

/**
 * The world state's encoding (docs/FORMAT.md), what a checkpoint seals: one line per property in registration order,
 *   JSON string of its id | TAB | the blocks that touched it, comma-separated | TAB | its canonical JSON | LF
 * cut into chunks of whole lines of about `chunkBytes`, so that neither writing nor reading a large state needs it
 * twice in memory. The state digest is the SHA-256 of all the lines in order: the same state gives the same digest
 * whether it was replayed from block 0 or restored from a checkpoint.
 */
export const STATE_CHUNK_BYTES = 1024 * 1024;

function line(e: StateEntry): string {
  return `${JSON.stringify(e.id)}\t${typeof e.blocks === 'number' ? e.blocks : e.blocks.join(',')}\t${e.json}\n`;
}

/**
 * encodeState yields the state's lines in chunks, then its digest. It reads a snapshot of the state taken when
 * called (WorldState.snapshot), so blocks may go on being applied while the chunks are consumed; `height` is the
 * snapshot's. Read the chunks to the end (or return() the generator) to release the snapshot.
 */
export function encodeState(
  state: WorldState,
  chunkBytes = STATE_CHUNK_BYTES,
): { chunks: Generator<Buffer>; digest: () => string; properties: number; height: number } {
  const snapshot = state.snapshot();
  const hash = createHash('sha256');
  let done = false;
  function* chunks(): Generator<Buffer> {
    try {
      yield* cut();
    } finally {
      snapshot.release();
    }
  }
  function* cut(): Generator<Buffer> {
    let parts: string[] = [];
    let size = 0;
    for (const e of snapshot.entries()) {
      const l = line(e);
      parts.push(l);
      size += l.length;
      if (size >= chunkBytes) {
        const buf = Buffer.from(parts.join(''), 'utf8');
        hash.update(buf);
        yield buf;
        parts = [];
        size = 0;
      }
    }
    const buf = Buffer.from(parts.join(''), 'utf8');
    hash.update(buf);
    done = true;
    if (buf.length > 0) yield buf;
  }
  return {
    chunks: chunks(),
    digest: () => {
      if (!done) throw new Error('encodeState: the digest is known once every chunk was read');
      return hash.digest('hex');
    },
    properties: snapshot.size,
    height: snapshot.height,
  };
}

/** stateDigest is the digest of the state's encoding (see encodeState). */
export function stateDigest(state: WorldState): string {
  const hash = createHash('sha256');
  for (const e of state.entries()) hash.update(line(e));
  return hash.digest('hex');
}

/**
 * StateDecoder rebuilds a state from its chunks in order; finish() checks the digest and the property count.
 * Malformed input throws IntegrityError naming `where`.
 */
export class StateDecoder {
  readonly state = new WorldState();
  readonly #hash = createHash('sha256');
  #count = 0;

  constructor(
    height: number,
    readonly where: string,
  ) {
    this.state.setHeight(height);
  }

  push(chunk: Buffer): void {
    this.#hash.update(chunk);
    if (chunk.length > 0 && chunk[chunk.length - 1] !== 0x0a)
      throw new IntegrityError(`${this.where}: a chunk of the state ends mid-line`);
    const text = chunk.toString('utf8');
    for (let at = 0; at < text.length; ) {
      const end = text.indexOf('\n', at);
      const t1 = text.indexOf('\t', at);
      const t2 = t1 < 0 ? -1 : text.indexOf('\t', t1 + 1);
      if (t1 < 0 || t2 < 0 || t2 > end)
        throw new IntegrityError(`${this.where}: line ${this.#count + 1} of the state is malformed`);
      let id: unknown;
      try {
        id = JSON.parse(text.slice(at, t1));
      } catch {
        id = null;
      }
      const list = text
        .slice(t1 + 1, t2)
        .split(',')
        .map(Number);
      if (typeof id !== 'string' || list.some((n) => !Number.isSafeInteger(n) || n < 0) || t2 + 1 >= end) {
        throw new IntegrityError(`${this.where}: line ${this.#count + 1} of the state is malformed`);
      }
      this.state.add({ id, blocks: list.length === 1 ? list[0]! : list, json: text.slice(t2 + 1, end) });
      this.#count++;
      at = end + 1;
    }
  }

  /** finish returns the state, checking it against the digest and property count the checkpoint recorded. */
  finish(expect: { digest: string; properties: number }): WorldState {
    const digest = this.#hash.digest('hex');
    if (digest !== expect.digest || this.#count !== expect.properties) {
      throw new IntegrityError(
        `${this.where}: the state holds ${this.#count} properties with digest ${digest.slice(0, 16)}, its checkpoint says ${expect.properties} with ${expect.digest.slice(0, 16)}`,
      );
    }
    return this.state;
  }
}
