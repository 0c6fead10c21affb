/**
 * verifyInWorker (what serve gives GET /chain/verify): the same report as Ledger.verify, from a worker thread that
 * opens the store read-only beside the running ledger, for a sound chain and for one with a stored block altered.
 */
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { verifyInWorker } from '../src/server/verify-thread.js';
import { Ledger } from '../src/service/ledger.js';

let dir: string;
let config: Config;
let ledger: Ledger;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-verify-worker-'));
  config = { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: join(dir, 'blocks') };
  ledger = await Ledger.open({ config });
  for (const id of ['a', 'b', 'c']) await ledger.register({ id, name: id, address: 'x', owner: 'o' });
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

it('reports a sound chain as Ledger.verify does', async () => {
  expect(await verifyInWorker(config)()).toEqual(await ledger.verify());
  expect(await ledger.verify()).toEqual({ ok: true, totalBlocks: 4, headHash: ledger.head.hash });
});

it('reports a stored block altered at rest as not ok, naming the block', async () => {
  const gen = (await readdir(config.dataDir)).find((n) => n.startsWith('chain-'))!;
  const seg = (await readdir(join(config.dataDir, gen))).find((n) => n.endsWith('.seg'))!;
  const fh = await open(join(config.dataDir, gen, seg), 'r+');
  const { size } = await fh.stat();
  const byte = Buffer.alloc(1);
  await fh.read(byte, 0, 1, size - 1);
  byte[0] = byte[0]! ^ 0xff;
  await fh.write(byte, 0, 1, size - 1);
  await fh.close();
  const report = await verifyInWorker(config)();
  expect(report).toEqual({ ok: false, reason: expect.stringContaining('block 3') });
});
