import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { largestValidNodes, leavesOf, NODE_BYTES, type NodeSource } from '../ledger/accumulator.js';
import { fsError } from './fs-errors.js';

/** ACCUMULATOR_FILE is the node file's name in the data folder. */
export const ACCUMULATOR_FILE = 'accumulator.nodes';

const MAGIC = Buffer.from('PWMR', 'latin1');
const VERSION = 1;
/** "PWMR" | version u8 | 3 reserved | ledger id (32) | clean leaves u64 LE; then the nodes, 32 bytes each. */
const HEADER_BYTES = 48;
const CLEAN_AT = 40;

/**
 * AccumulatorFile keeps the accumulator's nodes (src/ledger/accumulator.ts) in an append-only file of the data folder,
 * so proofs read O(log n) nodes from the disk and memory holds none of them. The file is derived from the chain: it
 * is never fsync'd on a save (a save pays no extra fsync), only on a clean close, which then records in the header how
 * many leaves it holds. A file opened without that mark (a crash, a power loss) is not trusted: the caller rebuilds it
 * from the chain's block hashes. Nodes appended are written in the background, in order; reads see them at once.
 */
export class AccumulatorFile implements NodeSource {
  readonly #fh: FileHandle;
  readonly #path: string;
  #ledgerId: string;
  // Nodes on disk, and those appended but not written yet (readers see both).
  #written: number;
  #pending: Buffer[] = [];
  #writing: Promise<void> = Promise.resolve();
  #failed: unknown = null;
  /** trustedLeaves is how many leaves the file held at a clean close that it still holds, else 0. */
  readonly trustedLeaves: number;

  private constructor(fh: FileHandle, path: string, ledgerId: string, written: number, trusted: number) {
    this.#fh = fh;
    this.#path = path;
    this.#ledgerId = ledgerId;
    this.#written = written;
    this.trustedLeaves = trusted;
  }

  /**
   * open opens (or creates) the node file of `dir` for `ledgerId`. A file of another ledger, a foreign header or a
   * torn tail is cut back (to nothing, or to its last whole leaf); only a file closed cleanly counts as trusted.
   */
  static async open(dir: string, ledgerId: string): Promise<AccumulatorFile> {
    const path = join(dir, ACCUMULATOR_FILE);
    try {
      const fh = await open(path, 'a+', 0o600).then(async (h) => {
        await h.close();
        return open(path, 'r+');
      });
      const size = (await fh.stat()).size;
      const header = Buffer.alloc(HEADER_BYTES);
      await fh.read(header, 0, HEADER_BYTES, 0);
      const ours =
        size >= HEADER_BYTES &&
        header.subarray(0, 4).equals(MAGIC) &&
        header[4] === VERSION &&
        header.subarray(8, 40).toString('hex') === ledgerId;
      const nodes = ours ? largestValidNodes(Math.floor((size - HEADER_BYTES) / NODE_BYTES)) : 0;
      const leaves = leavesOf(nodes) ?? 0;
      const clean = ours ? Number(header.readBigUInt64LE(CLEAN_AT)) : -1;
      const file = new AccumulatorFile(fh, path, ledgerId, nodes, clean === leaves ? leaves : 0);
      if (!ours) await file.#writeHeader(0);
      if (size !== HEADER_BYTES + nodes * NODE_BYTES) await fh.truncate(HEADER_BYTES + nodes * NODE_BYTES);
      // From here on the file changes without fsync: a crash must find it untrusted.
      if (clean >= 0) await file.#writeHeader(0);
      return file;
    } catch (err) {
      throw fsError(err, path);
    }
  }

  /** nodes is how many nodes the file holds (written or pending). */
  get nodes(): number {
    return this.#written + this.#pending.length;
  }

  /** node reads the node at `position`. */
  async node(position: number): Promise<Buffer> {
    if (this.#failed) throw this.#failed;
    if (position >= this.#written) {
      const pending = this.#pending[position - this.#written];
      if (!pending) throw new RangeError(`node ${position} is past the end of ${this.#path}`);
      return pending;
    }
    const buf = Buffer.allocUnsafe(NODE_BYTES);
    const { bytesRead } = await this.#fh.read(buf, 0, NODE_BYTES, HEADER_BYTES + position * NODE_BYTES);
    if (bytesRead !== NODE_BYTES) throw new IntegrityError(`${this.#path} ended inside node ${position}`);
    return buf;
  }

  /** append adds nodes after the last; they are written in the background (flushed() waits for them). */
  append(nodes: readonly Buffer[]): void {
    this.#pending.push(...nodes);
    if (this.#pending.length === nodes.length) this.#writing = this.#writing.then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0 && !this.#failed) {
      const batch = this.#pending.slice();
      try {
        await this.#fh.write(
          Buffer.concat(batch),
          0,
          batch.length * NODE_BYTES,
          HEADER_BYTES + this.#written * NODE_BYTES,
        );
      } catch (err) {
        this.#failed = fsError(err, this.#path);
        return;
      }
      this.#written += batch.length;
      this.#pending.splice(0, batch.length);
    }
  }

  /** flushed resolves once every appended node is written, and throws if a write failed. */
  async flushed(): Promise<void> {
    await this.#writing;
    if (this.#failed) throw this.#failed;
  }

  /** truncate keeps the nodes of the first `nodes` positions only (a whole number of leaves). */
  async truncate(nodes: number, ledgerId = this.#ledgerId): Promise<void> {
    await this.flushed();
    if (ledgerId !== this.#ledgerId) {
      this.#ledgerId = ledgerId;
      await this.#writeHeader(0);
    }
    this.#written = Math.min(this.#written, nodes);
    await this.#fh.truncate(HEADER_BYTES + this.#written * NODE_BYTES);
  }

  async #writeHeader(cleanLeaves: number): Promise<void> {
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header[4] = VERSION;
    Buffer.from(this.#ledgerId, 'hex').copy(header, 8);
    header.writeBigUInt64LE(BigInt(cleanLeaves), CLEAN_AT);
    await this.#fh.write(header, 0, HEADER_BYTES, 0);
    await this.#fh.datasync();
  }

  /** close writes what is pending, makes it durable and marks the file clean (trusted at the next open). */
  async close(): Promise<void> {
    try {
      await this.flushed();
      await this.#fh.datasync();
      await this.#writeHeader(leavesOf(this.#written) ?? 0);
    } finally {
      await this.#fh.close();
    }
  }

  /** abandon closes the file without marking it clean (its contents are not known to be whole). */
  async abandon(): Promise<void> {
    await this.#writing;
    await this.#fh.close();
  }
}
