/**
 * What one save costs on disk, and what it leaves there. A save appends its block and nothing else, so the bytes it
 * writes do not grow with the chain: one save at height 10 and one at height 10,000 write about the same. And the
 * store holds sealed blocks only: a property's name, address, owner and id never appear in the data folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_BYTES } from '../../src/ledger/accumulator.js';
import { HEAD_SLOT_BYTES } from '../../src/store/head-marker.js';
import { Ledger } from '../../src/service/ledger.js';
import { listFiles, tempDir, testConfig } from '../support/durability.js';
import { loadConfig } from '../../src/config.js';

const SAMPLES = 5;

/** wchar is the bytes this process has passed to write(2) and friends (Linux); null elsewhere. */
function wchar(): number | null {
  if (!existsSync('/proc/self/io')) return null;
  const m = /^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : null;
}

async function folderBytes(dir: string): Promise<number> {
  let sum = 0;
  for (const path of await listFiles(dir)) sum += (await readFile(path)).length;
  return sum;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** property makes a register input of a fixed shape: every save below is the same size but for its counter. */
function property(n: number) {
  return {
    id: `cost-${String(n).padStart(6, '0')}`,
    name: `Cost test property ${String(n).padStart(6, '0')}`,
    address: `${String(n).padStart(6, '0')} Constant Avenue`,
    owner: 'owner-constant',
    attributes: { rooms: 3 },
  };
}

/** measure saves SAMPLES more properties one at a time and returns the median growth of the folder and of wchar. */
async function measure(
  ledger: Ledger,
  dataDir: string,
  start: number,
): Promise<{ grown: number; written: number | null }> {
  const grown: number[] = [];
  const written: number[] = [];
  for (let k = 0; k < SAMPLES; k++) {
    const before = await folderBytes(dataDir);
    const w0 = wchar();
    await ledger.register(property(start + k));
    const w1 = wchar();
    grown.push((await folderBytes(dataDir)) - before);
    if (w0 !== null && w1 !== null) written.push(w1 - w0);
  }
  return { grown: median(grown), written: written.length ? median(written) : null };
}

describe('the cost of one save', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('cost'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('writes about the same bytes at chain length 10 and at 10,000', async () => {
    // Default segment size (8 MiB): 10,000 blocks fit in one segment, so no roll falls inside a measurement.
    const dataDir = join(dir, 'data');
    const ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir } });
    try {
      let n = 1;
      while (ledger.head.index < 9) await ledger.register(property(n++));
      expect(ledger.head.index).toBe(9);
      const small = await measure(ledger, dataDir, n);
      n += SAMPLES;

      // Grow the chain to 10,000 blocks through the public API: 100 concurrent saves at a time, so the group commit
      // shares each fsync. Every save is still its own block.
      const started = performance.now();
      while (ledger.head.index < 9_999) {
        const batch = Math.min(100, 9_999 - ledger.head.index);
        await Promise.all(Array.from({ length: batch }, () => ledger.register(property(n++))));
      }
      const buildMs = Math.round(performance.now() - started);
      expect(ledger.head.index).toBe(9_999);
      expect(buildMs, 'building a 10,000-block chain took too long').toBeLessThan(20_000);

      const large = await measure(ledger, dataDir, n);
      console.info(
        `save cost: built 10,000 blocks in ${buildMs} ms; one save grows the folder by ${small.grown} B at height 10 ` +
          `and ${large.grown} B at height 10,000; write(2) bytes ${small.written} vs ${large.written}`,
      );
      expect(small.grown).toBeGreaterThan(0);
      expect(Math.abs(large.grown - small.grown) / small.grown).toBeLessThanOrEqual(0.1);
      if (small.written !== null && large.written !== null) {
        // Bytes actually handed to the kernel: catches a save that rewrites files in place (which sizes cannot see).
        expect(small.written).toBeGreaterThan(0);
        expect(Math.abs(large.written - small.written) / small.written).toBeLessThanOrEqual(0.1);
        // Besides its records a save rewrites one fixed-size slot of the head marker, whatever the chain's length, and
        // appends at most 1 + log2(n) accumulator nodes; their write runs in the background, so the one of the save
        // before may land in this save's window too. Rewriting anything in place would cost kilobytes at this length.
        const accumulator = 2 * NODE_BYTES * (1 + Math.ceil(Math.log2(ledger.head.index + 1)));
        expect(large.written, 'a save writes much more than it adds to the store').toBeLessThanOrEqual(
          large.grown * 1.1 + HEAD_SLOT_BYTES + accumulator,
        );
      }
      expect(await ledger.verify()).toMatchObject({ ok: true, totalBlocks: 10_000 + SAMPLES });
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('leaves no plaintext of a property anywhere in the data folder', async () => {
    const dataDir = join(dir, 'secret');
    const secret = {
      id: 'zq-unique-parcel-7731',
      name: 'Marmalade Observatory Quokka',
      address: '42 Xylophone Quarry Boulevard, Snorkelton',
      owner: 'Bartholomew Zanzibar-Fitzwilliam',
      attributes: { note: 'periwinkle-contraband-ledger' },
    };
    const ledger = await Ledger.open({ config: testConfig(dataDir, 4096) });
    const needles = [
      secret.id,
      secret.name,
      secret.address,
      secret.owner,
      secret.attributes.note,
      'Snorkelton',
      'Zanzibar',
    ];
    const search = async (when: string) => {
      const found: string[] = [];
      const files = await listFiles(dataDir);
      expect(files.length).toBeGreaterThan(0);
      for (const path of files) {
        const bytes = await readFile(path);
        for (const s of needles) {
          if (bytes.includes(Buffer.from(s, 'utf8'))) found.push(`${when}: "${s}" in ${path}`);
          if (bytes.includes(Buffer.from(Buffer.from(s, 'utf8').toString('hex'), 'latin1')))
            found.push(`${when}: hex of "${s}" in ${path}`);
        }
      }
      return found;
    };
    try {
      await ledger.register({ id: 'before', name: 'Before', address: '1 First St', owner: 'a' });
      await ledger.register(secret);
      await ledger.update(secret.id, { name: `${secret.name} Annex`, attributes: { extra: secret.attributes.note } });
      await ledger.transfer(secret.id, { from: secret.owner, to: `${secret.owner} Jr` });
      expect((await ledger.property(secret.id)).property.owner).toBe(`${secret.owner} Jr`);
      expect(await search('while open')).toEqual([]);
    } finally {
      await ledger.close();
    }
    expect(await search('after close')).toEqual([]);
  });
});
