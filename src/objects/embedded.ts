import { mkdir, open, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as dagPb from '@ipld/dag-pb';
import { FsBlockstore } from 'blockstore-fs';
import { NextToLast } from 'blockstore-fs/sharding';
import type { ReadableStorage } from 'ipfs-unixfs-exporter';
import type { WritableStorage } from 'ipfs-unixfs-importer';
import type { CID } from 'multiformats/cid';
import { ConfigError, IntegrityError, NotFoundError, PawledgerError, UnavailableError } from '../errors.js';
import { Mutex } from '../util/mutex.js';
import { atomicWrite, fsyncDir } from '../store/fsutil.js';
import type { ObjectStore, PutRequest } from './object-store.js';
import { blockMatches, importBytes, KUBO_V1, parseCid, sha256Hex } from './unixfs.js';
import { readUnixfsFile } from './unixfs-read.js';

/** EmbeddedIpfsStoreOptions configure the embedded provider. */
export interface EmbeddedIpfsStoreOptions {
  /** dir is the provider's own folder; it holds `blocks/` (blockstore-fs) and `pins/` (one marker per pinned root). */
  dir: string;
}

/** PinMarker is the content of `pins/<cid>.json`. */
interface PinMarker {
  cid: string;
  name: string;
  keyvalues: Record<string, string>;
  bytes: number;
  pinnedAt: string;
}

const MARKER = '.json';

/**
 * EmbeddedIpfsStore keeps IPFS files in a local folder, with no daemon: blocks in a blockstore-fs store, built by
 * ipfs-unixfs-importer with Kubo's `--cid-version=1` parameters (so its CIDs are the ones any node computes), and a
 * pin set as one marker file per root. It serves restores from the same disk, so it helps only where the disk
 * outlives the process; its worth is producing real CIDs and DAGs that can later be exported to a node or a CAR.
 *
 * Durability: add writes the blocks, fsyncs each block file and its folder, and only then writes the pin marker
 * atomically (temp, fsync, rename, fsync dir), so a pin never names blocks that a crash could lose. A crash before the
 * marker leaves unpinned blocks, which the next remove sweeps away.
 *
 * Reads: get walks the DAG from the asked root, pinned or not, and checks every block it reads against its CID. A
 * root not on disk is NotFoundError; a pinned root with a missing or altered block is IntegrityError naming it.
 *
 * GC: remove drops the marker, then marks every block reachable from the remaining pins and deletes every other
 * block in the store (leftovers of crashed adds included). When a remaining pin cannot be walked (a damaged node) the
 * sweep is skipped, so a damaged store never loses more. add and remove run one at a time within this instance;
 * two processes over one folder are not supported (the ledger's lock keeps to one writer).
 */
export class EmbeddedIpfsStore implements ObjectStore {
  readonly name = 'embedded';
  readonly contentAddressed = true;
  readonly label: string;
  readonly #dir: string;
  readonly #blocksDir: string;
  readonly #pinsDir: string;
  readonly #sharding = new NextToLast();
  readonly #mutex = new Mutex();
  #opened: Promise<FsBlockstore> | null = null;

  constructor(options: EmbeddedIpfsStoreOptions) {
    if (typeof options?.dir !== 'string' || options.dir.trim() === '') {
      throw new ConfigError('The embedded IPFS provider needs a folder', {
        hint: 'Set the IPFS folder (default ./.pawledger/ipfs)',
      });
    }
    this.#dir = resolve(options.dir);
    this.#blocksDir = join(this.#dir, 'blocks');
    this.#pinsDir = join(this.#dir, 'pins');
    this.label = `embedded IPFS blockstore ${this.#dir}`;
  }

  async put(bytes: Uint8Array, request: PutRequest): Promise<string> {
    return this.#mutex.run(async () => {
      const store = await this.#store();
      const written: CID[] = [];
      const sink: WritableStorage = {
        put: async (cid, block) => {
          await store.put(cid, block);
          written.push(cid);
          return cid;
        },
      };
      let root: CID;
      try {
        root = await importBytes(bytes, sink, KUBO_V1);
        await this.#syncBlocks(written);
        const marker: PinMarker = {
          cid: root.toString(),
          name: request.label,
          keyvalues: request.keyvalues ?? {},
          bytes: bytes.length,
          pinnedAt: new Date().toISOString(),
        };
        await atomicWrite(this.#markerPath(root), Buffer.from(`${JSON.stringify(marker)}\n`));
      } catch (err) {
        throw this.#storageError(err, `Could not add ${bytes.length} bytes (${request.label}) to`);
      }
      return root.toString();
    });
  }

  async get(cid: string, options: { sha256?: string } = {}): Promise<Buffer> {
    const root = parseCid(cid);
    // Under the mutex: a remove sweeping blocks mid-read would look like damage.
    return this.#mutex.run(() => this.#get(root, options.sha256));
  }

  async #get(root: CID, sha256: string | undefined): Promise<Buffer> {
    const store = await this.#store();
    const pinned = await this.#isPinned(root);
    const reader = this.#verifyingReader(store, root, pinned);
    let bytes: Buffer;
    try {
      bytes = await readUnixfsFile(root, async (cid) => {
        const chunks: Uint8Array[] = [];
        for await (const chunk of reader.get(cid)) chunks.push(chunk);
        return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      });
    } catch (err) {
      if (err instanceof PawledgerError) throw err;
      // Every block read was checked already: what is left is a DAG that does not make a whole file.
      throw new IntegrityError(
        `CID ${root} in ${this.label} does not make a readable file (${(err as Error).message})`,
        { cause: err },
      );
    }
    if (sha256 !== undefined && sha256Hex(bytes) !== sha256.toLowerCase()) {
      throw new IntegrityError(`CID ${root} in ${this.label} does not match its recorded SHA-256`, {
        hint: 'Restore from another tier',
      });
    }
    return bytes;
  }

  /** has tells whether `cid` is pinned here (its marker exists). */
  async has(cid: string): Promise<boolean> {
    const root = parseCid(cid);
    await this.#store();
    return readFile(this.#markerPath(root)).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw this.#storageError(err, `Could not look up ${root} in`);
      },
    );
  }

  async delete(cid: string): Promise<void> {
    const root = parseCid(cid);
    await this.#mutex.run(async () => {
      await this.#store();
      try {
        await unlink(this.#markerPath(root));
        await fsyncDir(this.#pinsDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          throw this.#storageError(err, `Could not unpin ${root} in`);
      }
      await this.#sweep();
    });
  }

  async check(): Promise<void> {
    await this.#store();
    const probe = join(this.#dir, `.check-${process.pid}-${Date.now()}`);
    try {
      const fh = await open(probe, 'wx', 0o600);
      try {
        await fh.writeFile('pawledger');
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw this.#storageError(err, 'Cannot write to');
    } finally {
      await rm(probe, { force: true });
    }
  }

  async close(): Promise<void> {
    const opened = this.#opened;
    this.#opened = null;
    await (await opened?.catch(() => null))?.close();
  }

  /** #store creates the folders on first use (nothing happens in the constructor) and opens the blockstore. */
  #store(): Promise<FsBlockstore> {
    this.#opened ??= (async () => {
      try {
        await mkdir(this.#blocksDir, { recursive: true });
        await mkdir(this.#pinsDir, { recursive: true });
        await fsyncDir(this.#dir);
        await fsyncDir(dirname(this.#dir));
        // Temp files of marker writes a crash interrupted were never pins.
        for (const f of await readdir(this.#pinsDir))
          if (!f.endsWith(MARKER)) await rm(join(this.#pinsDir, f), { force: true });
        const store = new FsBlockstore(this.#blocksDir, { shardingStrategy: this.#sharding });
        await store.open();
        return store;
      } catch (err) {
        throw this.#storageError(err, 'Cannot open');
      }
    })();
    this.#opened.catch(() => {
      this.#opened = null; // a later call tries again (the folder may have been fixed)
    });
    return this.#opened;
  }

  #markerPath(root: CID): string {
    return join(this.#pinsDir, `${root.toV1().toString()}${MARKER}`);
  }

  async #isPinned(root: CID): Promise<boolean> {
    try {
      await readFile(this.#markerPath(root));
      return true;
    } catch {
      return false;
    }
  }

  /** #syncBlocks makes freshly written block files durable: blockstore-fs renames them into place without fsync. */
  async #syncBlocks(cids: readonly CID[]): Promise<void> {
    const dirs = new Set<string>();
    for (const cid of cids) {
      const { dir, file } = this.#sharding.encode(cid);
      const fh = await open(join(this.#blocksDir, dir, file), 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      dirs.add(join(this.#blocksDir, dir));
    }
    for (const dir of dirs) await fsyncDir(dir);
    if (dirs.size > 0) await fsyncDir(this.#blocksDir); // new shard folders
  }

  /**
   * #verifyingReader reads blocks for a file read (and the sweep) and checks each against its CID before handing it on. A missing
   * root is NotFoundError unless pinned; a missing block under a pinned root means the store is damaged.
   */
  #verifyingReader(store: FsBlockstore, root: CID, pinned: boolean): ReadableStorage {
    const label = this.label;
    return {
      async *get(cid, options) {
        let block: Buffer;
        try {
          const chunks: Uint8Array[] = [];
          for await (const chunk of store.get(cid, options)) chunks.push(chunk);
          block = Buffer.concat(chunks);
        } catch (err) {
          if (!pinned) throw new NotFoundError(`CID ${root} is not in ${label}`, { cause: err });
          const which = cid.equals(root) ? 'its root block' : `block ${cid}`;
          throw new IntegrityError(`CID ${root} is pinned in ${label} but ${which} is missing`, {
            hint: 'Restore from another tier',
            cause: err,
          });
        }
        if (!blockMatches(cid, block)) {
          const which = cid.equals(root) ? 'its root block' : `block ${cid}`;
          throw new IntegrityError(`CID ${root} in ${label}: ${which} does not hash to its CID (damaged on disk)`, {
            hint: 'Restore from another tier',
          });
        }
        yield block;
      },
    };
  }

  /** #sweep deletes every block no pin reaches (see the class comment); it gives up quietly on a damaged pin. */
  async #sweep(): Promise<void> {
    const store = await this.#store();
    const reader = store as ReadableStorage;
    const live = new Set<string>();
    try {
      for (const f of await readdir(this.#pinsDir)) {
        if (!f.endsWith(MARKER)) continue;
        const queue = [parseCid(f.slice(0, -MARKER.length))];
        for (let cid = queue.shift(); cid; cid = queue.shift()) {
          const key = Buffer.from(cid.multihash.bytes).toString('base64');
          if (live.has(key)) continue;
          live.add(key);
          if (cid.code !== dagPb.code) continue; // raw leaves link nothing: no need to read them
          const chunks: Uint8Array[] = [];
          for await (const chunk of reader.get(cid)) chunks.push(chunk);
          const block = Buffer.concat(chunks);
          if (!blockMatches(cid, block)) return;
          for (const link of dagPb.decode(block).Links) queue.push(link.Hash);
        }
      }
    } catch {
      return; // a pin that cannot be walked: keep everything rather than guess what it still needs
    }
    try {
      for await (const { cid } of store.getAll()) {
        if (!live.has(Buffer.from(cid.multihash.bytes).toString('base64'))) await store.delete(cid);
      }
    } catch (err) {
      throw this.#storageError(err, 'Could not collect unpinned blocks in');
    }
  }

  /** #storageError types a file-system failure: permissions and read-only disks are configuration, the rest may pass. */
  #storageError(err: unknown, what: string): PawledgerError {
    if (err instanceof PawledgerError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const detail = err instanceof Error ? err.message : String(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR') {
      return new ConfigError(`${what} ${this.label}: ${detail}`, {
        hint: 'Point the IPFS folder at a writable directory',
        cause: err,
      });
    }
    return new UnavailableError(`${what} ${this.label}: ${detail}`, {
      hint: code === 'ENOSPC' ? 'Free disk space, then retry' : 'Retry later',
      cause: err,
    });
  }
}
