/**
 * The crash campaign (project issue #12, item 9), shared by bench/crash-campaign.ts (the full run) and
 * test/durability/campaign.test.ts (a short one in CI). One run of a mode:
 *
 *   - makes a throwaway database on the local PostgreSQL and a work folder, and (by mode) a TCP proxy in front of the
 *     database or a Pinata stand-in;
 *   - starts the built `pawledger serve` on one data folder, over and over. Some starts are SIGKILLed at a random
 *     moment while they start up (restore, migrations, catch-up); the others serve several concurrent HTTP clients
 *     that register, update and transfer properties (and now and then try a transfer the ledger must refuse), and
 *     are SIGKILLed a random few milliseconds after a random number of acknowledged saves, mid-flight;
 *   - meanwhile injects the mode's faults: none (A); database cuts through the proxy, refusing or blackholing, and
 *     pg_terminate_backend on its own database (B); bursts of 429 and 5xx from the Pinata API and a failing
 *     gateway (C);
 *   - after every start that listens, checks over HTTP that every acknowledged save is in the chain at the block
 *     its answer named, with what was sent, that each property's state and history are what the saves make them,
 *     that nothing was saved twice or out of nowhere, and that GET /chain/verify passes; then (every restart, or only
 *     at the end) waits for the database and IPFS tiers to reach the local head and runs `pawledger verify`,
 *     `verify --from db` and `verify --from ipfs`, each of which must verify and end at the local head;
 *   - at the end stops the server with SIGTERM (it must exit 0) and verifies the local store once more.
 *
 * Everything random comes from one seeded generator (the seed is printed), but kill moments race real processes, so
 * a seed replays the same plan, not the same interleaving.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Block, Property } from '../../src/ledger/types.js';
import { apply, indexChain, isSaved, sameTx, type Op } from './campaign-model.js';
import { createTempDatabase, pgUrl, TEST_KEY, type TempDatabase } from './pg.js';
import { runCliAsync } from './serve-process.js';
import { spawnServe, type SpawnedServe } from './serve-spawn.js';
import { startPinataStandin, type PinataStandin } from './standins/pinata.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** CampaignMode: A the database and the embedded IPFS blockstore; B the same, the database cut through a proxy; C IPFS through the Pinata stand-in failing in bursts. */
export type CampaignMode = 'A' | 'B' | 'C';

export const MODE_TITLES: Record<CampaignMode, string> = {
  A: 'A: PostgreSQL + embedded IPFS, kills',
  B: 'B: PostgreSQL cut through a proxy + embedded IPFS, kills',
  C: 'C: PostgreSQL + Pinata stand-in answering 429/5xx bursts, kills',
};

export interface CampaignOptions {
  mode: CampaignMode;
  /** saves is how many acknowledged saves to drive (the run stops issuing once it has them). */
  saves: number;
  seed: number;
  /** root is the folder the run's work folder is made in. */
  root: string;
  /** clients is the number of concurrent HTTP clients. @default 4 */
  clients?: number;
  /** acksPerKill bounds the acknowledged saves a run serves before its kill. @default [10, 70] */
  acksPerKill?: [number, number];
  /** startupKillChance is the chance that a start is killed while it starts up. @default 0.25 */
  startupKillChance?: number;
  /** tierChecks: wait for every tier and run the three CLI verifications after every restart, or only at the end. @default 'every-restart' */
  tierChecks?: 'every-restart' | 'end';
  /** tierTimeoutMs is how long the tiers get to reach the local head before that counts as a failure. @default 90000 */
  tierTimeoutMs?: number;
  /** keep leaves the work folder (data, logs) in place; by default it is removed unless something failed. */
  keep?: boolean;
  /** log receives progress lines. */
  log?: (line: string) => void;
}

export interface CampaignResult {
  mode: CampaignMode;
  seed: number;
  /** kills is every SIGKILL: during saves plus during startup. */
  kills: number;
  saveKills: number;
  startupKills: number;
  /** starts counts the server starts (each one after a kill is a restart). */
  starts: number;
  /** acked is the number of saves answered 2xx. */
  acked: number;
  /** refused counts the transfers made to be refused that were refused (409). */
  refused: number;
  /** doubtful counts requests cut by a kill; doubtfulSaved those the next check found saved. */
  doubtful: number;
  doubtfulSaved: number;
  /** lost lists the acknowledged saves that were missing or changed at some check (must be empty). */
  lost: string[];
  /** verifyFailures lists every failed verification: /chain/verify, the three CLI verifies, a tier not reaching the head. */
  verifyFailures: string[];
  /** problems lists everything else that is wrong: an unexpected answer, a save found twice or from nowhere, a server that would not start. */
  problems: string[];
  /** crashes counts the servers that exited without being killed (each is also a problem). */
  crashes: number;
  /** faults counts the faults injected, by kind. */
  faults: Record<string, number>;
  /** checks counts content checks; tierChecks the rounds of tier waits and CLI verifications. */
  checks: number;
  tierChecks: number;
  /** tierLagMs is the longest wait for the tiers to reach the head. */
  tierLagMs: number;
  /** spentMs is where the time went: starting servers, content checks, tier waits and CLI verifications, saving. */
  spentMs: { starting: number; checks: number; tiers: number; saving: number };
  height: number;
  durationMs: number;
  workDir: string;
}

const TOKEN = 'crash-campaign-admin-token-0123456789';

/** STARTUP_STEPS are log lines of `serve` after which a startup kill may be aimed. */
const STARTUP_STEPS: { name: string; re: RegExp }[] = [
  { name: 'restore begins', re: /Initializing ledger with auto-restore/ },
  { name: 'database listed', re: /Priority 1: / },
  { name: 'local store listed', re: /Priority 3: local store/ },
  { name: 'restored', re: /Ledger restored from|created a new genesis block/ },
  {
    name: 'database caught up or backed up',
    re: /caught up: sent|Ledger backed up to database|auto-backup on every save enabled/,
  },
  { name: 'IPFS backed up', re: /Ledger backed up to IPFS/ },
  { name: 'listening', re: /serving on/ },
];
const JWT = 'eyJhbGciOiJIUzI1NiJ9.crash-campaign.standin';

/** mulberry32 is a small seeded generator: the campaign's only source of randomness. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** withTimeout is `p`, or an Error(`message`) after `ms`; the timer does not outlive it. */
async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type HttpResult = { status: number; body: Record<string, unknown> } | { error: string };

async function http(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<HttpResult> {
  try {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? {} : { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text
    }
    return { status: res.status, body: parsed as Record<string, unknown> };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { error: `${e.name}: ${e.cause?.code ?? e.cause?.message ?? e.message}` };
  }
}

async function getJson<T>(url: string, path: string): Promise<T> {
  const r = await http(url, 'GET', path);
  if ('error' in r) throw new Error(`GET ${path}: ${r.error}`);
  if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body as T;
}

interface StatusBody {
  height: number;
  headHash: string;
  totalProperties: number;
  tiers: { name: string; state: string; height: number; detail?: string }[];
}

/** Environment is what a mode runs against: the server's environment, the CLI's, and the fault injector. */
interface Environment {
  serverEnv: Record<string, string>;
  cliEnv: Record<string, string>;
  /** inject runs faults until `over()`; heal undoes any fault in force (before tier checks). */
  inject(over: () => boolean, rnd: () => number, faults: Record<string, number>): Promise<void>;
  heal(): Promise<void>;
  /** ipfsWrites counts what the IPFS service has been asked to store so far (pins made, or Pinata API requests). */
  ipfsWrites(): Promise<number>;
  close(): Promise<void>;
}

async function environment(
  mode: CampaignMode,
  db: TempDatabase,
  workDir: string,
  log: (l: string) => void,
): Promise<Environment> {
  const dataDir = join(workDir, 'blocks');
  const common: Record<string, string> = {
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    ADMIN_TOKEN: TOKEN,
    LEDGER_DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    // Small segments: kills also land in segment rolls. Short timeouts and retries: a run is a few minutes, not hours.
    LEDGER_SEGMENT_BYTES: '16384',
    LEDGER_RETRY_MS: '100',
    PG_TIMEOUT_MS: '1000',
    IPFS_DEBOUNCE_MS: '25',
    LEDGER_SOURCE_TIMEOUT_MS: '4000',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
  };
  const embedded = { IPFS_PROVIDER: 'embedded', IPFS_EMBEDDED_DIR: join(workDir, 'ipfs') };
  const nothing = async () => {};
  // The embedded provider writes one marker file per pin: their count moves with every add.
  const pins = () =>
    readdir(join(workDir, 'ipfs', 'pins')).then(
      (names) => names.length,
      () => 0,
    );
  if (mode === 'A') {
    const env = { ...common, ...embedded, DATABASE_URL: db.url };
    return { serverEnv: env, cliEnv: env, inject: nothing, heal: nothing, ipfsWrites: pins, close: nothing };
  }
  if (mode === 'B') {
    const proxy: TcpProxy = await startTcpProxy(5432);
    let cut = false;
    const restore = async () => {
      if (!cut) return;
      // A refused link closes the proxy's port; in the rare case another process took it meanwhile, try again.
      for (let i = 0; ; i++) {
        try {
          await proxy.restore();
          cut = false;
          return;
        } catch (err) {
          if (i >= 50) throw err;
          await sleep(100);
        }
      }
    };
    const env = { ...common, ...embedded };
    return {
      serverEnv: { ...env, DATABASE_URL: pgUrl(db.name, proxy.port) },
      // The CLI checks the tiers over a direct connection: what is in the database, whatever the proxy does.
      cliEnv: { ...env, DATABASE_URL: db.url },
      async inject(over, rnd, faults) {
        while (!over()) {
          await sleep(rnd() * 150);
          if (over()) break;
          const r = rnd();
          if (r < 0.35) {
            await proxy.cut('refuse');
            cut = true;
            faults['db refuse'] = (faults['db refuse'] ?? 0) + 1;
          } else if (r < 0.7) {
            await proxy.cut('blackhole');
            cut = true;
            faults['db blackhole'] = (faults['db blackhole'] ?? 0) + 1;
          } else {
            const killed = await db.sql<{ t: boolean }>(
              "SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pawledger'",
              [db.name],
            );
            faults['db terminate'] = (faults['db terminate'] ?? 0) + 1;
            faults['backends terminated'] = (faults['backends terminated'] ?? 0) + killed.filter((k) => k.t).length;
            continue;
          }
          await sleep(30 + rnd() * 600);
          // Now and then the link stays cut past the kill: the next start then begins with the database away.
          if (!over() || rnd() < 0.5) await restore();
          else faults['cut across a restart'] = (faults['cut across a restart'] ?? 0) + 1;
        }
      },
      heal: restore,
      ipfsWrites: pins,
      close: () => proxy.close(),
    };
  }
  const pinata: PinataStandin = await startPinataStandin({ jwt: JWT });
  log(`  Pinata stand-in ${pinata.url}, gateway ${pinata.gatewayUrl}`);
  const env = {
    ...common,
    DATABASE_URL: db.url,
    PINATA_JWT: JWT,
    PINATA_API_URL: pinata.url,
    PINATA_GATEWAY_URL: pinata.gatewayUrl,
  };
  // failNext queues failures for the next API requests, whoever makes them. A burst is over once that many requests
  // came in; a new burst waits for that, so failures never pile up into an outage far longer than the burst meant.
  let queued = 0;
  let seen = pinata.requests.total;
  const outstanding = () => {
    queued = Math.max(0, queued - (pinata.requests.total - seen));
    seen = pinata.requests.total;
    return queued;
  };
  return {
    serverEnv: env,
    cliEnv: env,
    async inject(over, rnd, faults) {
      while (!over()) {
        await sleep(rnd() * 200);
        if (over()) break;
        const r = rnd();
        const n = 1 + Math.floor(rnd() * 6);
        if (r < 0.85 && outstanding() > 0) continue;
        if (r < 0.45) {
          pinata.failNext(429, n);
          queued += n;
          faults['pinata 429'] = (faults['pinata 429'] ?? 0) + n;
        } else if (r < 0.85) {
          const status = [500, 502, 503][Math.floor(rnd() * 3)]!;
          pinata.failNext(status, n);
          queued += n;
          faults['pinata 5xx'] = (faults['pinata 5xx'] ?? 0) + n;
        } else {
          pinata.gateway.mode = 'fail';
          faults['gateway down'] = (faults['gateway down'] ?? 0) + 1;
          await sleep(30 + rnd() * 400);
          pinata.gateway.mode = 'ok';
        }
      }
    },
    async heal() {
      pinata.gateway.mode = 'ok';
      // End any burst still queued: this harness's own requests take the failures meant for the server's.
      for (let i = 0; outstanding() > 0 && i < 100; i++) {
        await fetch(`${pinata.url}/data/testAuthentication`, { headers: { authorization: `Bearer ${JWT}` } }).then(
          (r) => r.arrayBuffer(),
          () => null,
        );
      }
    },
    ipfsWrites: async () => pinata.requests.total,
    close: () => pinata.close(),
  };
}

/** runCampaign runs one mode to `saves` acknowledged saves and returns what it counted and found. */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const rnd = mulberry32(options.seed);
  const between = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const clients = options.clients ?? 4;
  const [minAcks, maxAcks] = options.acksPerKill ?? [10, 70];
  const startupKillChance = options.startupKillChance ?? 0.25;
  const tierEvery = (options.tierChecks ?? 'every-restart') === 'every-restart';
  const tierTimeoutMs = options.tierTimeoutMs ?? 90_000;
  const workDir = join(options.root, `mode-${options.mode}-seed-${options.seed}`);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(join(workDir, 'logs'), { recursive: true });

  const result: CampaignResult = {
    mode: options.mode,
    seed: options.seed,
    kills: 0,
    saveKills: 0,
    startupKills: 0,
    starts: 0,
    acked: 0,
    refused: 0,
    doubtful: 0,
    doubtfulSaved: 0,
    crashes: 0,
    lost: [],
    verifyFailures: [],
    problems: [],
    faults: {},
    checks: 0,
    tierChecks: 0,
    tierLagMs: 0,
    spentMs: { starting: 0, checks: 0, tiers: 0, saving: 0 },
    height: -1,
    durationMs: 0,
    workDir,
  };
  const lostTags = new Set<string>();
  const ops: Op[] = [];
  const byTag = new Map<string, Op>();
  let seq = 0;
  // Each client owns its properties: its requests are one at a time, so per property the order of saves is known.
  const owned: string[][] = Array.from({ length: clients }, () => []);
  let propertyCount = 0;

  const db = await createTempDatabase();
  const env = await environment(options.mode, db, workDir, log);
  let server: SpawnedServe | null = null;
  const saveLog = async (s: SpawnedServe, name: string) => {
    await writeFile(join(workDir, 'logs', `${name}.log`), `${s.lines.join('\n')}\n`);
  };
  const problem = (p: string) => {
    result.problems.push(`start ${result.starts}: ${p}`);
    log(`  PROBLEM: ${p}`);
  };
  const verifyFailure = (p: string) => {
    result.verifyFailures.push(`start ${result.starts}: ${p}`);
    log(`  VERIFY FAILED: ${p}`);
  };

  // The state each saved op leaves its property in, replaying the saved ops of every property in order.
  const expectedStates = (): Map<string, { state: Property; ops: Op[] }> => {
    const out = new Map<string, { state: Property; ops: Op[] }>();
    for (const op of ops) {
      if (!isSaved(op)) continue;
      const cur = out.get(op.propertyId);
      out.set(op.propertyId, { state: apply(cur?.state, op), ops: [...(cur?.ops ?? []), op] });
    }
    return out;
  };

  const timed = async <T>(what: keyof CampaignResult['spentMs'], fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      result.spentMs[what] += Math.round(performance.now() - t0);
    }
  };

  /** checkContent checks everything the campaign knows against what the running server serves. */
  const checkContent = (url: string) =>
    timed('checks', async (): Promise<StatusBody> => {
      result.checks++;
      const status = await getJson<StatusBody>(url, '/status');
      const blocks: Block[] = [];
      for (let from = 0; from <= status.height; from += 1000) {
        blocks.push(...(await getJson<{ blocks: Block[] }>(url, `/chain?from=${from}&limit=1000`)).blocks);
      }
      if (
        blocks.length !== status.height + 1 ||
        blocks.some((b, i) => b.index !== i || (i > 0 && b.previousHash !== blocks[i - 1]!.hash))
      ) {
        verifyFailure(`GET /chain does not give ${status.height + 1} linked blocks (got ${blocks.length})`);
      }
      if (blocks.at(-1)?.hash !== status.headHash)
        verifyFailure(`the head hash of /status is not the last block's of /chain`);
      const chain = indexChain(blocks);
      for (const d of chain.duplicates) problem(`a save is in the chain twice: ${d}`);
      for (const i of chain.untagged) if (i !== 0) problem(`block ${i} holds a transaction the campaign did not send`);
      for (const tag of chain.byTag.keys())
        if (!byTag.has(tag)) problem(`the chain holds a transaction tagged ${tag} that was never sent`);

      for (const op of ops) {
        const f = chain.byTag.get(op.tag);
        const where = f
          ? `block ${f.index} ${f.hash.slice(0, 12)}${sameTx(op, f.tx) ? '' : ' with different content'}`
          : 'nowhere';
        switch (op.status) {
          case 'acked':
          case 'present':
            if (!f || f.index !== op.at!.index || f.hash !== op.at!.hash || !sameTx(op, f.tx)) {
              const what = `${op.kind} ${op.tag} of ${op.propertyId} (block ${op.at!.index} ${op.at!.hash.slice(0, 12)}, sent in start ${op.round})`;
              if (op.status === 'acked') {
                if (!lostTags.has(op.tag)) result.lost.push(`start ${result.starts}: acknowledged ${what} is ${where}`);
                lostTags.add(op.tag);
                log(`  LOST: acknowledged ${what} is ${where}`);
              } else problem(`a cut save found saved by an earlier check, ${what}, is now ${where}`);
            }
            break;
          case 'doubt':
            if (f && sameTx(op, f.tx)) {
              op.status = 'present';
              op.at = { index: f.index, hash: f.hash };
              result.doubtfulSaved++;
            } else if (f) {
              problem(`cut ${op.kind} ${op.tag} was saved with different content in ${where}`);
              op.status = 'absent';
            } else op.status = 'absent';
            break;
          case 'absent':
          case 'refused':
            if (f)
              problem(
                `${op.status === 'refused' ? `refused (${op.httpStatus})` : 'cut, earlier found unsaved,'} ${op.kind} ${op.tag} of ${op.propertyId} is in ${where}`,
              );
            break;
          case 'pending':
            problem(`op ${op.tag} is still pending at a check (campaign bug)`);
        }
      }
      const maxAcked = Math.max(-1, ...ops.filter((o) => o.status === 'acked').map((o) => o.at!.index));
      if (status.height < maxAcked)
        result.lost.push(
          `start ${result.starts}: the head (${status.height}) is below the highest acknowledged block (${maxAcked})`,
        );

      // Every property's state and history, as the saves make them.
      const expected = expectedStates();
      const listed = (await getJson<{ properties: Property[] }>(url, '/properties')).properties;
      const listedIds = new Set(listed.map((p) => p.id));
      for (const p of listed) {
        const e = expected.get(p.id);
        if (!e) problem(`GET /properties lists ${p.id}, which no saved op registered`);
        else if (JSON.stringify(sortKeys(p)) !== JSON.stringify(sortKeys(e.state)))
          problem(`GET /properties: ${p.id} is ${JSON.stringify(p)}, the saves make it ${JSON.stringify(e.state)}`);
      }
      for (const [id, e] of expected) {
        if (!listedIds.has(id)) {
          const ackedOps = e.ops.filter((o) => o.status === 'acked');
          if (ackedOps.length > 0) {
            for (const o of ackedOps)
              if (!lostTags.has(o.tag)) {
                lostTags.add(o.tag);
                result.lost.push(
                  `start ${result.starts}: property ${id} of acknowledged ${o.kind} ${o.tag} is missing from GET /properties`,
                );
              }
          } else problem(`property ${id} (saved by a cut request) is missing from GET /properties`);
          continue;
        }
        const one = await http(url, 'GET', `/properties/${encodeURIComponent(id)}`);
        if ('error' in one || one.status !== 200) {
          problem(
            `GET /properties/${id} failed: ${'error' in one ? one.error : `${one.status} ${JSON.stringify(one.body)}`}`,
          );
          continue;
        }
        const body = one.body as {
          property: Property;
          history: { blockIndex: number; blockHash: string; transaction: never }[];
        };
        if (JSON.stringify(sortKeys(body.property)) !== JSON.stringify(sortKeys(e.state))) {
          problem(
            `GET /properties/${id}: ${JSON.stringify(body.property)}, the saves make it ${JSON.stringify(e.state)}`,
          );
        }
        const history = body.history;
        const bad =
          history.length !== e.ops.length ||
          e.ops.some((o, i) => {
            const h = history[i]!;
            return h.blockIndex !== o.at!.index || h.blockHash !== o.at!.hash || !sameTx(o, h.transaction);
          });
        if (bad) {
          const lostHere = e.ops.filter(
            (o) =>
              o.status === 'acked' &&
              !history.some(
                (h) => h.blockIndex === o.at!.index && h.blockHash === o.at!.hash && sameTx(o, h.transaction),
              ),
          );
          for (const o of lostHere)
            if (!lostTags.has(o.tag)) {
              lostTags.add(o.tag);
              result.lost.push(
                `start ${result.starts}: acknowledged ${o.kind} ${o.tag} is missing from GET /properties/${id}'s history`,
              );
            }
          problem(
            `GET /properties/${id}: history ${JSON.stringify(history.map((h) => [h.blockIndex, h.blockHash.slice(0, 8)]))}, the saves make it ${JSON.stringify(e.ops.map((o) => [o.at!.index, o.at!.hash.slice(0, 8)]))}`,
          );
        }
      }

      const verify = await http(url, 'GET', '/chain/verify', undefined, 120_000);
      if (
        'error' in verify ||
        verify.status !== 200 ||
        verify.body.ok !== true ||
        verify.body.totalBlocks !== status.height + 1 ||
        verify.body.headHash !== status.headHash
      ) {
        verifyFailure(
          `GET /chain/verify: ${'error' in verify ? verify.error : `${verify.status} ${JSON.stringify(verify.body)}`}`,
        );
      }
      result.height = status.height;
      return status;
    });

  /** checkTiers waits for the database and IPFS to reach the local head, then verifies all three with the CLI. */
  const checkTiers = (url: string) =>
    timed('tiers', async (): Promise<void> => {
      result.tierChecks++;
      await env.heal();
      const t0 = performance.now();
      let st = await getJson<StatusBody>(url, '/status');
      const level = (s: StatusBody) =>
        ['db', 'ipfs'].every((n) => {
          const t = s.tiers.find((x) => x.name === n);
          return t?.state === 'ok' && t.height === s.height;
        });
      // What IPFS was asked to store during the last part of the wait: a lagging tier that nothing retries shows 0.
      const windowMs = Math.min(10_000, Math.floor(tierTimeoutMs / 2));
      const writes: { at: number; n: number }[] = [];
      while (!level(st) && performance.now() - t0 < tierTimeoutMs) {
        writes.push({ at: performance.now(), n: await env.ipfsWrites() });
        await sleep(100);
        st = await getJson<StatusBody>(url, '/status');
      }
      const waited = Math.round(performance.now() - t0);
      result.tierLagMs = Math.max(result.tierLagMs, waited);
      if (!level(st)) {
        const now = await env.ipfsWrites();
        const before = writes.find((w) => w.at >= performance.now() - windowMs)?.n ?? now;
        verifyFailure(
          `the tiers did not reach the local head (block ${st.height}) in ${tierTimeoutMs} ms (IPFS writes in the last ${windowMs / 1000} s of the wait: ${now - before}): ${JSON.stringify(st.tiers.filter((t) => t.name !== 'local'))}`,
        );
      }
      // Each verification must pass and end at the local head. A failing one is asked again for a few seconds, so
      // that only a tier that stays wrong counts (with no saves running, nothing should change any more).
      const verifyOnce = async (args: string[]): Promise<string | null> => {
        const what = `pawledger verify ${args.join(' ')}`.trim();
        const r = await runCliAsync(workDir, { ...env.cliEnv, LOG_LEVEL: 'warn' }, ['verify', ...args, '--json']);
        let report: { ok?: boolean; totalBlocks?: number; headHash?: string; backupId?: string } = {};
        try {
          report = JSON.parse(r.stdout);
        } catch {
          // reported below
        }
        if (r.code !== 0 || report.ok !== true)
          return `${what} exited ${r.code}: ${r.stdout.trim()} ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
        if (report.totalBlocks !== st.height + 1 || report.headHash !== st.headHash) {
          return `${what} verified ${report.backupId ? `backup ${report.backupId}, ` : ''}${report.totalBlocks} blocks ending at ${report.headHash?.slice(0, 12)}, but the local head is block ${st.height} ${st.headHash.slice(0, 12)} (/status: ${JSON.stringify(st.tiers.map((t) => [t.name, t.state, t.height]))})`;
        }
        return null;
      };
      const failures = await Promise.all(
        [[], ['--from', 'db'], ['--from', 'ipfs']].map(async (args) => {
          const until = performance.now() + 1500;
          let failure = await verifyOnce(args);
          while (failure !== null && performance.now() < until) {
            await sleep(500);
            failure = await verifyOnce(args);
          }
          return failure;
        }),
      );
      for (const f of failures) if (f !== null) verifyFailure(f);
      log(
        `  tiers level after ${waited} ms; verify, verify --from db, verify --from ipfs: ${failures.every((f) => f === null) ? 'ok' : 'FAILED'}`,
      );
    });

  // One client's next op: mostly updates and transfers of its own properties, some registers, a few bad transfers.
  const nextOp = (client: number, view: Map<string, Property>): Op => {
    const mine = owned[client]!.filter((id) => view.has(id));
    const tag = `c${client}-${seq}`;
    const base = { tag, client, seq: seq++, status: 'pending' as const, round: result.starts };
    const r = rnd();
    if (mine.length < 3 || r < 0.2) {
      const id = `p${propertyCount++}-c${client}`;
      owned[client]!.push(id);
      return {
        ...base,
        kind: 'register',
        propertyId: id,
        body: {
          id,
          name: `Property ${id}`,
          address: `${between(1, 999)} Crash Street`,
          owner: `first-owner-${client}`,
          attributes: { op: tag, beds: between(1, 6), note: 'x'.repeat(between(0, 200)) },
        },
      };
    }
    const id = mine[Math.floor(rnd() * mine.length)]!;
    const cur = view.get(id)!;
    if (r < 0.6) {
      const attributes: Record<string, unknown> = { op: tag, v: between(0, 1e6) };
      if (rnd() < 0.3) attributes.note = null;
      if (rnd() < 0.3) attributes[`k${between(0, 9)}`] = 'y'.repeat(between(1, 100));
      return {
        ...base,
        kind: 'update',
        propertyId: id,
        body: rnd() < 0.3 ? { name: `Renamed ${tag}`, attributes } : { attributes },
      };
    }
    if (r < 0.95) return { ...base, kind: 'transfer', propertyId: id, body: { from: cur.owner, to: `owner-${tag}` } };
    return { ...base, kind: 'bad-transfer', propertyId: id, body: { from: `not-${cur.owner}`, to: `owner-${tag}` } };
  };

  /** serveClients runs the clients against url until stop() says so; ack() is called on each acknowledged save. */
  const serveClients = async (
    url: string,
    stopped: () => boolean,
    ack: () => void,
    serverGone: Promise<unknown>,
  ): Promise<void> => {
    const views = expectedStates();
    await Promise.all(
      owned.map(async (_, client) => {
        const view = new Map<string, Property>();
        for (const id of owned[client]!) {
          const e = views.get(id);
          if (e) view.set(id, e.state);
        }
        while (!stopped() && result.acked < options.saves) {
          const op = nextOp(client, view);
          ops.push(op);
          byTag.set(op.tag, op);
          const path =
            op.kind === 'register'
              ? '/properties'
              : op.kind === 'update'
                ? `/properties/${op.propertyId}`
                : `/properties/${op.propertyId}/transfer`;
          const r = await http(url, op.kind === 'update' ? 'PATCH' : 'POST', path, op.body);
          if ('error' in r) {
            // Cut by the kill (or stalled): whether it was saved is found out at the next check. This client waits
            // for that check: its view of the property is unknown until then.
            op.status = 'doubt';
            result.doubtful++;
            // A server that died by itself is reported once, as such, not once per client it cut off.
            if (!stopped()) await Promise.race([serverGone, sleep(2000)]);
            if (!stopped()) problem(`${op.kind} ${op.tag} failed without a kill: ${r.error}`);
            return;
          }
          op.httpStatus = r.status;
          if (r.status >= 200 && r.status < 300) {
            const b = r.body as { block?: { index?: number; hash?: string }; property?: Property };
            if (typeof b.block?.index !== 'number' || typeof b.block.hash !== 'string') {
              problem(`${op.kind} ${op.tag} answered ${r.status} without a block: ${JSON.stringify(r.body)}`);
              op.status = 'doubt';
              result.doubtful++;
              return;
            }
            op.status = 'acked';
            op.at = { index: b.block.index, hash: b.block.hash };
            op.ackProperty = b.property!;
            result.acked++;
            if (op.kind === 'bad-transfer')
              problem(`a transfer from the wrong owner (${op.tag}) was accepted: ${JSON.stringify(r.body)}`);
            const next = apply(view.get(op.propertyId), op);
            if (JSON.stringify(sortKeys(next)) !== JSON.stringify(sortKeys(b.property))) {
              problem(
                `${op.kind} ${op.tag} answered property ${JSON.stringify(b.property)}, the saves make it ${JSON.stringify(next)}`,
              );
            }
            view.set(op.propertyId, next);
            ack();
          } else if (op.kind === 'bad-transfer' && r.status === 409) {
            op.status = 'refused';
            result.refused++;
          } else if (r.status >= 500) {
            op.status = 'doubt';
            result.doubtful++;
            problem(`${op.kind} ${op.tag} answered ${r.status}: ${JSON.stringify(r.body)}`);
            return;
          } else {
            op.status = 'refused';
            problem(`${op.kind} ${op.tag} of ${op.propertyId} answered ${r.status}: ${JSON.stringify(r.body)}`);
          }
        }
      }),
    );
  };

  let startupMs = 1500;
  try {
    log(
      `mode ${MODE_TITLES[options.mode]}: seed ${options.seed}, ${options.saves} saves, ${clients} clients, work folder ${workDir}`,
    );
    while (result.acked < options.saves) {
      const s = spawnServe(workDir, env.serverEnv);
      server = s;
      result.starts++;
      if (rnd() < startupKillChance) {
        // Killed while it starts: half the time at a random moment of a start's usual length, half the time a few
        // milliseconds after a chosen step (the restore beginning, the sources listed, the restore done, the database
        // caught up or backed up, IPFS backed up, listening), so kills land inside restore and catch-up too.
        const marker = rnd() < 0.5 ? null : STARTUP_STEPS[Math.floor(rnd() * STARTUP_STEPS.length)]!;
        const at = marker ? between(0, 20) : Math.floor(rnd() * startupMs * 1.2);
        const { reached, exit } = await timed('starting', async () => {
          // A step that does not come (no IPFS upload needed, say) gives up a moment after the server listens.
          const reached = marker
            ? await Promise.race([
                s.waitForLine(marker.re, 30_000),
                s.listening
                  .then(
                    () => sleep(300),
                    () => {},
                  )
                  .then(() => false),
              ])
            : true;
          await Promise.race([sleep(at), s.exited]);
          return { reached, exit: await s.kill('SIGKILL') };
        });
        await saveLog(s, `start-${result.starts}`);
        if (exit.signal !== 'SIGKILL') {
          result.crashes++;
          problem(
            `the server exited by itself while starting (code ${exit.code}, signal ${exit.signal}); see logs/start-${result.starts}.log: ${crashExcerpt(s.lines)}`,
          );
          if (exit.code !== null && exit.code !== 0) break;
        }
        result.kills++;
        result.startupKills++;
        const when = marker
          ? `${at} ms after ${reached ? '' : 'waiting in vain for '}"${marker.name}"`
          : `${at} ms into startup`;
        log(`  start ${result.starts}: SIGKILL ${when}`);
        continue;
      }
      let url: string;
      try {
        url = await timed('starting', () => withTimeout(s.listening, 120_000, 'did not listen in 120 s'));
      } catch (err) {
        await s.kill('SIGKILL');
        await saveLog(s, `start-${result.starts}`);
        problem(
          `the server did not start: ${(err as Error).message}; see logs/start-${result.starts}.log: ${s.lines.slice(-3).join(' | ')}`,
        );
        break;
      }
      startupMs = Math.max(200, performance.now() - s.spawnedAt);
      await checkContent(url);
      if (tierEvery) await checkTiers(url);

      // Saves until a random number of acks, then a SIGKILL a few milliseconds later, with saves in flight.
      const target = between(minAcks, maxAcks);
      let roundAcks = 0;
      let over = false;
      let killTimer: NodeJS.Timeout | undefined;
      let killedAt = -1;
      let resolveKilled: () => void = () => {};
      const killed = new Promise<void>((resolve) => (resolveKilled = resolve));
      const kill = () => {
        if (over) return;
        over = true;
        killedAt = roundAcks;
        s.child.kill('SIGKILL');
        resolveKilled();
      };
      const fallback = setTimeout(() => {
        problem(`no ${target} acknowledged saves within 60 s (got ${roundAcks}): killing anyway`);
        kill();
      }, 60_000);
      void s.exited.then(() => {
        clearTimeout(fallback);
        if (over) return;
        over = true;
        result.crashes++;
        problem(
          `the server exited by itself during saves (code ${s.child.exitCode}, signal ${s.child.signalCode}); see logs/start-${result.starts}.log: ${crashExcerpt(s.lines)}`,
        );
        resolveKilled();
      });
      const onAck = () => {
        roundAcks++;
        if (killTimer === undefined && (roundAcks >= target || result.acked >= options.saves)) {
          clearTimeout(fallback);
          killTimer = setTimeout(kill, between(0, 15));
        }
      };
      const savingFrom = performance.now();
      const injector = env.inject(() => over, rnd, result.faults);
      const clientsDone = serveClients(url, () => over, onAck, s.exited);
      await killed;
      clearTimeout(killTimer);
      const exit = await s.exited;
      await Promise.all([clientsDone, injector]);
      result.spentMs.saving += Math.round(performance.now() - savingFrom);
      await saveLog(s, `start-${result.starts}`);
      if (exit.signal === 'SIGKILL') {
        result.kills++;
        result.saveKills++;
      }
      log(
        `  start ${result.starts}: SIGKILL after ${killedAt} acknowledged saves (total ${result.acked}, ${ops.filter((o) => o.status === 'doubt').length} cut in flight)`,
      );
    }

    // The last start: everything checked, every tier level and verified, then a clean stop.
    if (result.problems.every((p) => !/did not start|exited by itself while starting/.test(p))) {
      const s = spawnServe(workDir, env.serverEnv);
      server = s;
      result.starts++;
      const url = await timed('starting', () =>
        withTimeout(s.listening, 120_000, 'the final start did not listen in 120 s'),
      );
      await checkContent(url);
      await checkTiers(url);
      const exit = await s.kill('SIGTERM');
      await saveLog(s, `start-${result.starts}-final`);
      if (exit.code !== 0) problem(`the final SIGTERM ended the server with code ${exit.code}, signal ${exit.signal}`);
      const local = await runCliAsync(workDir, { ...env.cliEnv, LOG_LEVEL: 'warn' }, ['verify', '--json']);
      const report = (() => {
        try {
          return JSON.parse(local.stdout) as { ok?: boolean; totalBlocks?: number };
        } catch {
          return {};
        }
      })();
      if (local.code !== 0 || report.ok !== true || report.totalBlocks !== result.height + 1) {
        verifyFailure(
          `pawledger verify after the clean stop: ${local.code} ${local.stdout.trim()} ${local.stderr.trim()}`,
        );
      }
    }
  } catch (err) {
    problem(`the campaign stopped on an error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (server) await server.kill('SIGKILL');
    await env.close().catch(() => {});
    await db.drop().catch(() => {});
    result.durationMs = Math.round(performance.now() - started);
    const failed = result.lost.length + result.verifyFailures.length + result.problems.length > 0;
    await writeFile(
      join(workDir, 'result.json'),
      `${JSON.stringify({ ...result, ops: failed ? ops : undefined }, null, 1)}\n`,
    ).catch(() => {});
    if (!options.keep && !failed) await rm(workDir, { recursive: true, force: true });
  }
  return result;
}

/** crashExcerpt is the start of what a server printed outside its JSON log (a crash's message), else its last lines. */
function crashExcerpt(lines: readonly string[]): string {
  const raw = lines.filter((l) => !l.startsWith('{') && l.trim() !== '' && l.trim() !== '^');
  return (raw.length > 0 ? raw.slice(0, 4) : lines.slice(-3)).join(' | ').slice(0, 600);
}

/** sortKeys copies a JSON value with every object's keys sorted, so two states compare by content. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}
