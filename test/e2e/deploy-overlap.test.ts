/**
 * Two `pawledger serve` processes on one real PostgreSQL database, as in a zero-downtime deploy (LEDGER_LEASE=on):
 * the old instance holds the writer lease; the new one restores, serves reads, follows, and answers writes 503 until
 * the old one stops, then takes over within seconds. A paused holder (SIGSTOP past its lease) that wakes late cannot
 * commit. Each test checks the database itself: one branch, every acknowledged write exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/crypto/key.js';
import type { Block } from '../../src/ledger/types.js';
import { createTempDatabase, waitFor, type TempDatabase } from '../support/pg.js';
import { runCli, startServe, type ServeProcess } from '../support/serve-process.js';

const TOKEN = 'deploy-overlap-token-0123456789';
const key = generateKey();
let root: string;
let db: TempDatabase;
let seq = 0;
const running: ServeProcess[] = [];
const dataDirs = new Map<ServeProcess, string>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pl-overlap-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  db = await createTempDatabase();
});
afterEach(async () => {
  for (const s of running.splice(0)) {
    s.child.kill('SIGCONT');
    await s.stop('SIGKILL');
  }
  await db?.drop();
});

async function instance(extra: Record<string, string> = {}): Promise<ServeProcess> {
  const dataDir = join(root, `instance-${++seq}`);
  const s = await startServe(root, {
    LEDGER_ENCRYPTION_KEY: key,
    ADMIN_TOKEN: TOKEN,
    DATABASE_URL: db.url,
    LEDGER_DATA_DIR: dataDir,
    LEDGER_LEASE: 'on',
    LEDGER_FOLLOW_MS: '200',
    LEDGER_LEASE_TTL_MS: '3000',
    PG_TIMEOUT_MS: '2000',
    ...extra,
  });
  running.push(s);
  dataDirs.set(s, dataDir);
  return s;
}

interface WriterView {
  role: string;
  holder: string | null;
  instance: string;
  since: string | null;
}
async function status(
  s: ServeProcess,
): Promise<{ height: number; headHash: string; writer: WriterView; fork: string | null }> {
  // With the token: the writer's instance names are the operator's, not public.
  return (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as never;
}

/** register posts a new property; it resolves to the HTTP status, or 0 when the connection failed (not acknowledged). */
async function register(s: ServeProcess, id: string): Promise<{ status: number; retryAfter: string | null }> {
  try {
    const r = await fetch(`${s.url}/properties`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: id, address: '1 Deploy Way', owner: 'ops' }),
    });
    await r.arrayBuffer();
    return { status: r.status, retryAfter: r.headers.get('retry-after') };
  } catch {
    return { status: 0, retryAfter: null };
  }
}

/** chainOf reads a server's whole chain through GET /chain. */
async function chainOf(s: ServeProcess): Promise<Block[]> {
  const blocks: Block[] = [];
  for (let from = 0; ; from += 1000) {
    const page = (await (await fetch(`${s.url}/chain?from=${from}&limit=1000`)).json()) as { blocks: Block[] };
    blocks.push(...page.blocks);
    if (page.blocks.length < 1000) return blocks;
  }
}

/** expectOneChain checks the database: a single branch, and its newest backup names `head`. */
async function expectOneChain(head: { height: number; headHash: string }): Promise<void> {
  expect((await db.sql<{ n: string }>('SELECT count(*) AS n FROM ledger_branches'))[0]!.n).toBe('1');
  expect((await db.sql<{ n: string }>('SELECT count(*) AS n FROM ledger_blocks'))[0]!.n).toBe(String(head.height + 1));
  const newest = (
    await db.sql<{ height: string; head_hash: string }>(
      'SELECT height, head_hash FROM blockchain_backups ORDER BY id DESC LIMIT 1',
    )
  )[0]!;
  expect({ height: Number(newest.height), headHash: newest.head_hash }).toEqual(head);
}

describe('two serve processes on one database (LEDGER_LEASE=on)', () => {
  it('keeps one writer through a deploy overlap: no fork, every acknowledged write once, the new instance writing within seconds', async () => {
    // A long lease: a stall of the loaded machine must not hand the lease over mid-overlap; SIGTERM releases it anyway.
    const acked: string[] = [];
    const sent: string[] = [];
    const send = async (s: ServeProcess, id: string) => {
      sent.push(id);
      const r = await register(s, id);
      if (r.status === 201) acked.push(id);
      return r;
    };
    const old = await instance({ LEDGER_LEASE_TTL_MS: '20000' });
    expect((await send(old, 'before-1')).status).toBe(201);
    const fresh = await instance({ LEDGER_LEASE_TTL_MS: '20000' });
    const oldView = (await status(old)).writer;
    expect(oldView).toMatchObject({ role: 'writer', holder: oldView.instance });
    expect((await status(fresh)).writer).toMatchObject({ role: 'standby', holder: oldView.instance });
    expect(fresh.lines.join('\n')).toContain(`Writer lease held by ${oldView.instance}`);

    // The overlap: writes go to both instances, as a load balancer spreads them during a deploy.
    for (let i = 0; i < 10; i++) {
      const [a, b] = await Promise.all([send(old, `old-${i}`), send(fresh, `new-${i}`)]);
      expect(a.status).toBe(201);
      expect(b).toEqual({ status: 503, retryAfter: expect.any(String) });
    }
    await waitFor(
      'the new instance to follow',
      async () => (await status(fresh)).height === (await status(old)).height,
    );

    // The old instance gets SIGTERM while writes keep coming to both.
    const stopping = old.stop('SIGTERM');
    const stoppedAt = performance.now();
    let firstNewWrite = -1;
    for (let i = 10; firstNewWrite < 0 && performance.now() - stoppedAt < 15_000; i++) {
      const [, b] = await Promise.all([send(old, `old-${i}`), send(fresh, `new-${i}`)]);
      if (b.status === 201) firstNewWrite = performance.now() - stoppedAt;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(await stopping).toBe(0);
    running.splice(running.indexOf(old), 1);
    expect(firstNewWrite).toBeGreaterThan(0);
    expect(firstNewWrite).toBeLessThan(5000);
    for (let i = 0; i < 5; i++) expect((await send(fresh, `after-${i}`)).status).toBe(201);
    expect(old.lines.join('\n')).toContain('Writer lease released');
    expect(fresh.lines.join('\n')).toContain('Writer lease taken over');

    // Every acknowledged write is in the chain exactly once; nothing unacknowledged slipped in; one branch.
    const chain = await chainOf(fresh);
    const registered = chain
      .flatMap((b) => b.transactions)
      .flatMap((t) => (t.type === 'register' ? [t.property.id] : []));
    expect(new Set(registered).size).toBe(registered.length);
    expect([...registered].sort()).toEqual([...acked].sort());
    for (const id of registered) expect(sent).toContain(id);
    const s = await status(fresh);
    expect(s.fork).toBeNull();
    expect(s.writer.role).toBe('writer');
    await expectOneChain({ height: s.height, headHash: s.headHash });

    // status and doctor from the CLI name the holder; an instance with the lease off is told it would fork the ledger.
    const cliEnv = {
      LEDGER_ENCRYPTION_KEY: key,
      DATABASE_URL: db.url,
      LEDGER_DATA_DIR: dataDirs.get(fresh)!,
      LEDGER_LEASE: 'on',
    };
    const st = runCli(root, cliEnv, ['status', '--json']);
    expect(JSON.parse(st.stdout).writer).toMatchObject({
      mode: 'lease',
      holder: s.writer.instance,
      since: s.writer.since,
    });
    const doc = JSON.parse(runCli(root, cliEnv, ['doctor', '--json']).stdout) as {
      checks: { name: string; status: string; detail: string }[];
    };
    expect(doc.checks.find((c) => c.name === 'writer lease')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining(`held by ${s.writer.instance}`),
    });
    const off = runCli(root, { ...cliEnv, LEDGER_LEASE: 'off' }, ['doctor', '--json']);
    expect(off.code).toBe(1);
    expect((JSON.parse(off.stdout) as typeof doc).checks.find((c) => c.name === 'writer lease')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('would write beside it'),
    });
  }, 120_000);

  it('refuses the late append of a holder paused past its lease (SIGSTOP), and the woken holder follows the new writer', async () => {
    const a = await instance({ LEDGER_LEASE_TTL_MS: '3000' });
    expect((await register(a, 'a-1')).status).toBe(201);
    const b = await instance({ LEDGER_LEASE_TTL_MS: '3000' });
    expect((await status(b)).writer.role).toBe('standby');

    a.child.kill('SIGSTOP');
    await waitFor(
      'the standby to take the expired lease',
      async () => (await status(b)).writer.role === 'writer',
      10_000,
    );
    expect((await register(b, 'b-1')).status).toBe(201);

    // A write reaches the paused holder (the kernel queues it); then it wakes, still believing it holds the lease.
    const late = register(a, 'a-late');
    await new Promise((r) => setTimeout(r, 300));
    a.child.kill('SIGCONT');
    expect((await late).status).toBe(503);
    await waitFor(
      'the old holder to report itself a standby',
      async () => (await status(a)).writer.role === 'standby',
      10_000,
    );
    expect(a.lines.join('\n')).toContain('Writer lease lost to another instance');
    await waitFor(
      'the old holder to follow the new writer',
      async () => (await status(a)).headHash === (await status(b)).headHash,
      10_000,
    );

    const ids = (await chainOf(b))
      .flatMap((blk) => blk.transactions)
      .flatMap((t) => (t.type === 'register' ? [t.property.id] : []));
    expect(ids).toEqual(['a-1', 'b-1']);
    const s = await status(b);
    await expectOneChain({ height: s.height, headHash: s.headHash });
  }, 120_000);
});
