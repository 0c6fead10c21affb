import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { canonicalJson } from '../../src/ledger/canonical.js';
import { verifyProof, verifyProofText } from '../../src/ledger/proof-verifier.js';
import { Ledger } from '../../src/service/ledger.js';
import { ACCUMULATOR_FILE } from '../../src/store/accumulator-file.js';

const dirs: string[] = [];
const open = (dataDir: string, backupDir?: string) =>
  Ledger.open({
    config: {
      ...loadConfig({ LEDGER_DB: 'off', ...(backupDir ? { LEDGER_BACKUP_DIR: backupDir } : {}) }),
      dataDir,
    },
  });

async function fresh(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pawledger-proofs-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function seeded(dataDir: string, backupDir?: string): Promise<Ledger> {
  const ledger = await open(dataDir, backupDir);
  await ledger.register({ id: 'p1', name: 'Casa Azul', address: '1 Main St', owner: 'ann' });
  await ledger.register({ id: 'p2', name: 'SECRET-NAME', address: 'SECRET-ADDRESS', owner: 'SECRET-OWNER' });
  await ledger.update('p1', { attributes: { rooms: 3 } });
  await ledger.transfer('p1', { from: 'ann', to: 'bob' });
  return ledger;
}

const text = (proof: unknown) => `${canonicalJson(proof)}\n`;

describe("a property's proof, checked without the key", () => {
  it("verifies, holds every one of the property's transactions and nothing of another property", async () => {
    const ledger = await seeded(await fresh());
    try {
      expect((await ledger.proofsReady()).state).toBe('ready');
      const { proof, next } = await ledger.proof('p1');
      expect(next).toBeNull();
      const verdict = await verifyProofText(text(proof));
      expect(verdict).toMatchObject({ ok: true, propertyId: 'p1', head: { height: 4 } });
      expect(verdict.ok && verdict.transactions.map((t) => t.type)).toEqual(['register', 'update', 'transfer']);
      const all = text(proof);
      for (const secret of ['SECRET-NAME', 'SECRET-ADDRESS', 'SECRET-OWNER', '"p2"']) expect(all).not.toContain(secret);
      expect((await verifyProofText(all, { root: proof.head.root })).ok).toBe(true);
      const wrong = await verifyProofText(all, { root: 'ab'.repeat(32) });
      expect(wrong).toMatchObject({ ok: false, reason: expect.stringContaining('not abab') });
    } finally {
      await ledger.close();
    }
  });

  it('fails when any single byte of it is changed', async () => {
    const ledger = await seeded(await fresh());
    try {
      await ledger.proofsReady();
      const good = Buffer.from(text((await ledger.proof('p2')).proof));
      expect((await verifyProofText(good.toString())).ok).toBe(true);
      const passed: number[] = [];
      for (let i = 0; i < good.length; i++) {
        for (const flip of [0x01, 0x20]) {
          const bad = Buffer.from(good);
          bad[i] = bad[i]! ^ flip;
          if ((await verifyProofText(bad.toString('latin1'))).ok) passed.push(i);
        }
      }
      expect(passed).toEqual([]);
    } finally {
      await ledger.close();
    }
  }, 120_000);

  it('made against an older head, verifies with a consistency proof to the newer head, and only with one that fits', async () => {
    const ledger = await seeded(await fresh());
    try {
      await ledger.proofsReady();
      const { proof: old } = await ledger.proof('p1');
      await ledger.register({ id: 'p3', name: 'n', address: 'a', owner: 'o' });
      await ledger.transfer('p1', { from: 'bob', to: 'cy' });
      const { proof: now } = await ledger.proof('p1');
      const c = await ledger.consistency(old.head.height, now.head.height);
      expect(c.to.root).toBe(now.head.root);
      const ok = await verifyProof(old, { consistency: c, root: now.head.root });
      expect(ok).toMatchObject({ ok: true, head: { height: now.head.height, root: now.head.root } });
      // Without the consistency proof, the old proof does not lead to the new root.
      expect((await verifyProof(old, { root: now.head.root })).ok).toBe(false);
      // A consistency proof from another height does not fit the old proof's head.
      const other = await ledger.consistency(old.head.height - 1, now.head.height);
      expect((await verifyProof(old, { consistency: other })).ok).toBe(false);
      const forged = { ...c, path: [...c.path.slice(1), c.path[0]!] };
      expect((await verifyProof(old, { consistency: forged })).ok).toBe(false);
    } finally {
      await ledger.close();
    }
  });

  it('says why when the property is unknown or the page is out of range', async () => {
    const ledger = await seeded(await fresh());
    try {
      await ledger.proofsReady();
      await expect(ledger.proof('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ledger.proof('p1', { from: 3 })).rejects.toMatchObject({ code: 'VALIDATION', field: 'from' });
      const page = await ledger.proof('p1', { from: 1, limit: 1 });
      expect(page.next).toBe(2);
      expect(page.proof.blocks.map((b) => b.index)).toEqual([3]);
      expect((await verifyProof(page.proof)).ok).toBe(true);
      await expect(ledger.consistency(3, 99)).rejects.toMatchObject({ code: 'VALIDATION', field: 'to' });
    } finally {
      await ledger.close();
    }
  });
});

describe('the node file', () => {
  it('survives a restart (nothing rebuilt), and is rebuilt from the chain when lost or damaged', async () => {
    const dataDir = await fresh();
    let ledger = await seeded(dataDir);
    await ledger.proofsReady();
    const before = (await ledger.proof('p1')).proof;
    await ledger.close();
    const file = join(dataDir, ACCUMULATOR_FILE);
    const size = (await stat(file)).size;
    expect(size).toBe(48 + 32 * (2 * 5 - 2));

    ledger = await open(dataDir);
    expect(await ledger.proofsReady()).toEqual({ state: 'ready', rebuilt: 0 });
    expect((await ledger.proof('p1')).proof).toEqual(before);
    await ledger.close();

    await rm(file);
    ledger = await open(dataDir);
    expect(await ledger.proofsReady()).toEqual({ state: 'ready', rebuilt: 5 });
    expect((await ledger.proof('p1')).proof).toEqual(before);
    await ledger.close();

    // A file left by a crash (not closed cleanly) is not trusted, even when it looks whole.
    const { open: openFile } = await import('node:fs/promises');
    const fh = await openFile(file, 'r+');
    await fh.write(Buffer.alloc(8), 0, 8, 40);
    await fh.close();
    ledger = await open(dataDir);
    expect(await ledger.proofsReady()).toEqual({ state: 'ready', rebuilt: 5 });
    await ledger.close();

    await writeFile(file, 'not a node file');
    ledger = await open(dataDir);
    expect(await ledger.proofsReady()).toEqual({ state: 'ready', rebuilt: 5 });
    expect((await ledger.proof('p1')).proof).toEqual(before);
    await ledger.close();
  });

  it('puts the root in every backup record and manifest, and follows a restore to an older backup', async () => {
    const dataDir = await fresh();
    const backupDir = await fresh();
    const ledger = await seeded(dataDir, backupDir);
    try {
      await ledger.proofsReady();
      const named = await ledger.backup({ tier: 'dir', name: 'before p3' });
      const { proof } = await ledger.proof('p1');
      const [record] = await ledger.listBackups({ tier: 'dir', limit: 1 });
      expect(record!.id).toBe(named.id);
      expect(record!.root).toBe(proof.head.root);
      await ledger.register({ id: 'p3', name: 'n', address: 'a', owner: 'o' });
      expect((await ledger.proof('p1')).proof.head.root).not.toBe(proof.head.root);
      await ledger.restore({ tier: 'dir', id: named.id });
      expect(await ledger.proofsReady()).toEqual({ state: 'ready', rebuilt: 0 });
      expect((await ledger.proof('p1')).proof).toEqual(proof);
    } finally {
      await ledger.close();
    }
  });
});
