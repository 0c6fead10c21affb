import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as dagPb from '@ipld/dag-pb';
import type { MemoryBlockstore } from 'blockstore-core/memory';
import { CID } from 'multiformats/cid';

type BlockReader = (cid: CID) => Promise<Uint8Array>;
type BlockWriter = (cid: CID, block: Uint8Array) => Promise<void>;

/**
 * flipFirstLeaf damages the IPFS file `root` as a bad disk would: it flips one byte of the DAG's first leaf block
 * (the root itself for a one-block file), reading and writing blocks through `read` and `write`.
 */
export async function flipFirstLeaf(root: string, read: BlockReader, write: BlockWriter): Promise<void> {
  let cid = CID.parse(root);
  while (cid.code === dagPb.code) cid = dagPb.decode(await read(cid)).Links[0]!.Hash;
  const block = Buffer.from(await read(cid));
  if (block.length === 0) throw new Error(`block ${cid} is empty: nothing to flip`);
  block[block.length >> 1]! ^= 0x01;
  await write(cid, block);
}

/** memoryIo reads and writes the blocks of a stand-in's memory blockstore, for flipFirstLeaf. */
export function memoryIo(blocks: MemoryBlockstore): [BlockReader, BlockWriter] {
  const read = async (cid: CID) => {
    const parts: Uint8Array[] = [];
    for await (const part of blocks.get(cid)) parts.push(part);
    return Buffer.concat(parts);
  };
  return [read, async (cid, block) => void (await blocks.put(cid, block))];
}

/** closedPort returns a 127.0.0.1 port nothing listens on (it was just free), for a service that is down. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
