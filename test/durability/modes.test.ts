/**
 * File modes: a finished segment is made read-only (0400) so that nothing, pawledger included, rewrites history by
 * accident; the segment still being appended to is 0600; a generated key is readable by its owner only (0600).
 */
import { chmod } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/service/ledger.js';
import { mode, segmentFiles, tempDir, testConfig } from '../support/durability.js';

const SEGMENT_BYTES = 4096;

/** modes maps each segment file name to its mode, in octal, for readable failures. */
async function modes(dataDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of await segmentFiles(dataDir)) out[basename(p)] = (await mode(p)).toString(8);
  return out;
}

function expected(names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n, i) => [n, i === names.length - 1 ? '600' : '400']));
}

async function registerMany(ledger: Ledger, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await ledger.register({ id: `mode-${i}`, name: `Mode property ${i}`, address: `${i} Chmod Close`, owner: 'o' });
  }
}

describe('file modes in the data folder', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('modes'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('finished segments are 0400, the unfinished one 0600, the generated key 0600 — while open, after close, after reopen', async () => {
    const dataDir = join(dir, 'data');
    const ledger = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
    try {
      expect((await mode(join(dataDir, 'ledger.key'))).toString(8)).toBe('600');
      await registerMany(ledger, 0, 30);
      const names = Object.keys(await modes(dataDir));
      expect(names.length).toBeGreaterThanOrEqual(3);
      expect(await modes(dataDir)).toEqual(expected(names));
    } finally {
      await ledger.close();
    }
    const names = Object.keys(await modes(dataDir));
    expect(await modes(dataDir)).toEqual(expected(names));

    // Reopen: appending continues in the unfinished segment, and the next roll finishes it.
    const reopened = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
    try {
      await registerMany(reopened, 30, 20);
      const after = Object.keys(await modes(dataDir));
      expect(after.length).toBeGreaterThan(names.length);
      expect(await modes(dataDir)).toEqual(expected(after));
    } finally {
      await reopened.close();
    }
    expect((await mode(join(dataDir, 'ledger.key'))).toString(8)).toBe('600');
  });

  it('a key file left too open (0644) is tightened to 0600 when the ledger opens', async () => {
    const dataDir = join(dir, 'loose');
    const first = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
    await first.close();
    await chmod(join(dataDir, 'ledger.key'), 0o644);
    const again = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
    try {
      expect((await mode(join(dataDir, 'ledger.key'))).toString(8)).toBe('600');
    } finally {
      await again.close();
    }
  });
});
