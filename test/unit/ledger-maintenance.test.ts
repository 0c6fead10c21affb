import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Ledger } from '../../src/service/ledger.js';
import { LocalStore } from '../../src/store/local-store.js';
import { captureLogger, tempDir } from '../support/durability.js';

const KEY = 'd4'.repeat(32);

function open(dir: string, env: Record<string, string> = {}, deferBackground = false) {
  const captured = captureLogger();
  const ledger = Ledger.open({
    deferBackground,
    config: loadConfig({
      LEDGER_DB: 'off',
      LEDGER_DATA_DIR: join(dir, 'blocks'),
      LEDGER_ENCRYPTION_KEY: KEY,
      LEDGER_PACK_BYTES: '2048',
      LEDGER_PACK_KEEP_LOOSE: '5',
      LEDGER_CHECKPOINT_BLOCKS: '20',
      ...env,
    }),
    logger: captured.logger,
  });
  return { ledger, lines: captured.lines };
}

async function saveMany(ledger: Ledger, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = `dog-${i % 30}`;
    if (i < 30) await ledger.register({ id, name: `Kennel ${i}`, address: `${i} Bark St`, owner: 'ann' });
    else await ledger.update(id, { attributes: { visit: i } });
  }
}

async function layout(dir: string) {
  const { store } = await LocalStore.open(join(dir, 'blocks'), { readOnly: true });
  try {
    const cp = await store.checkpoint();
    return { packedThrough: store.packedThrough(), packs: store.packs().length, checkpoint: cp?.height ?? -1 };
  } finally {
    await store.close();
  }
}

describe('a ledger compacts and checkpoints its local store as it saves', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  it('packs settled blocks and checkpoints the state in the background of saves, and logs it', async () => {
    const { dir, cleanup } = await tempDir('maintain');
    cleanups.push(cleanup);
    const { ledger: opening, lines } = open(dir);
    const ledger = await opening;
    await saveMany(ledger, 120);
    await ledger.close();
    const l = await layout(dir);
    // All but the newest 5 blocks may be packed; the background work ran while saves went on.
    expect(l.packs).toBeGreaterThan(0);
    expect(l.packedThrough).toBeGreaterThan(0);
    expect(l.packedThrough).toBeLessThanOrEqual(120 - 5);
    expect(l.checkpoint).toBeGreaterThan(0);
    expect(lines.some((x) => /Compacted \d+ settled blocks/.test(x.msg))).toBe(true);
    expect(lines.some((x) => /Checkpoint of the world state at block \d+ kept/.test(x.msg))).toBe(true);
  });

  it('starts again from its own checkpoint, serves at once, and the full replay behind it agrees', async () => {
    const { dir, cleanup } = await tempDir('maintain-restart');
    cleanups.push(cleanup);
    const first = await open(dir).ledger;
    await saveMany(first, 80);
    await first.maintain();
    const head = first.head;
    const before = first.properties();
    await first.close();
    expect((await layout(dir)).checkpoint).toBe(80);

    const { ledger: opening, lines } = open(dir);
    const again = await opening;
    expect(again.head.hash).toBe(head.hash);
    expect(again.properties()).toEqual(before);
    expect(['replaying', 'verified']).toContain(again.status().verification.state);
    expect(await again.replayed()).toMatchObject({ state: 'verified', checkpoint: 80 });
    // It goes on saving from there.
    await again.transfer('dog-3', { from: 'ann', to: 'bob' });
    expect((await again.property('dog-3')).property.owner).toBe('bob');
    await again.close();
    expect(lines.some((x) => /checkpoint/i.test(x.msg))).toBe(true);
  });

  it('with deferBackground (as serve opens it) replays nothing until startBackground(), and saves meanwhile', async () => {
    const { dir, cleanup } = await tempDir('maintain-deferred');
    cleanups.push(cleanup);
    const first = await open(dir).ledger;
    await saveMany(first, 80);
    await first.maintain();
    await first.close();

    const { ledger: opening, lines } = open(dir, {}, true);
    const again = await opening;
    // Held back: no page replayed, no verdict, however long it waits.
    await new Promise((r) => setTimeout(r, 300));
    expect(again.status().verification).toEqual({ state: 'replaying', checkpoint: 80, replayed: 0 });
    expect(lines.some((x) => /Background replay/.test(x.msg))).toBe(false);
    // A save meanwhile is made, and the accumulator is brought level for its record's root: a proof answers.
    const saved = await again.transfer('dog-3', { from: 'ann', to: 'bob' });
    expect(saved.block.index).toBe(81);
    expect((await again.proofsReady()).state).toBe('ready');
    const { proof } = await again.proof('dog-3');
    expect(proof.head.height).toBe(81);
    expect(again.status().verification).toMatchObject({ state: 'replaying', replayed: 0 });
    await again.startBackground();
    expect(await again.replayed()).toMatchObject({ state: 'verified', checkpoint: 80 });
    await again.close();
  });

  it('with LEDGER_PACK_BYTES=0 and LEDGER_CHECKPOINT_BLOCKS=0 it keeps every block loose and takes no checkpoint', async () => {
    const { dir, cleanup } = await tempDir('maintain-off');
    cleanups.push(cleanup);
    const ledger = await open(dir, { LEDGER_PACK_BYTES: '0', LEDGER_CHECKPOINT_BLOCKS: '0' }).ledger;
    await saveMany(ledger, 60);
    await ledger.maintain();
    await ledger.close();
    expect(await layout(dir)).toEqual({ packedThrough: -1, packs: 0, checkpoint: -1 });
  });
});
