import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NextToLast } from 'blockstore-fs/sharding';
import type { CID } from 'multiformats/cid';
import { afterAll, beforeAll } from 'vitest';
import { EmbeddedIpfsStore } from '../../src/objects/embedded.js';
import { objectStoreSuite } from '../conformance/object-store-suite.js';
import { flipFirstLeaf } from '../support/object-stores.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-embedded-store-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const sharding = new NextToLast();
const blockFile = (cid: CID) => join(dir, 'ipfs', 'blocks', sharding.encode(cid).dir, sharding.encode(cid).file);

objectStoreSuite('embedded', {
  contentAddressed: true,
  list: false,
  create: () => new EmbeddedIpfsStore({ dir: join(dir, 'ipfs') }),
  tamper: (id) =>
    flipFirstLeaf(
      id,
      (cid) => readFile(blockFile(cid)),
      (cid, block) => writeFile(blockFile(cid), block),
    ),
  misconfigured: async () => {
    await writeFile(join(dir, 'a-file'), 'x');
    return new EmbeddedIpfsStore({ dir: join(dir, 'a-file', 'ipfs') });
  },
});
