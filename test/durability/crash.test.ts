/**
 * Crash durability: a child process saves in a loop and is killed with SIGKILL at random moments, over and over. Every
 * save it acknowledged (its `register` promise resolved) must be in the chain when the ledger is reopened, and the
 * stored chain must verify. Small segments make the child roll segments every ~30 saves, so kills also land in the
 * roll path; groups of 3 concurrent saves exercise the group commit.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Block } from '../../src/ledger/types.js';
import { Ledger } from '../../src/service/ledger.js';
import { captureLogger, errorInfo, mode, REPO, segmentFiles, tempDir, testConfig } from '../support/durability.js';

const SEGMENT_BYTES = 16384;
const MIN_KILLS = 10;
const MIN_ACKS = 200;
const BUDGET_MS = 45_000;

interface Ack {
  height: number;
  hash: string;
  id: string;
}

interface ChildRun {
  acks: Ack[];
  /** ready is true when the child got as far as opening the ledger. */
  ready: boolean;
  stderr: string;
}

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/**
 * runChild starts the save loop on dataDir and SIGKILLs it: `afterFirstAck` ms after its first acknowledged save, or
 * (for a kill while it starts up and repairs the store) `afterSpawn` ms after it was spawned.
 */
function runChild(dataDir: string, kill: { afterFirstAck: number } | { afterSpawn: number }): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/save-loop.ts', dataDir, String(SEGMENT_BYTES)],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const acks: Ack[] = [];
    let ready = false;
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const killNow = () => child.kill('SIGKILL');
    // Never wait forever: a child that acknowledges nothing within 15 s is a failure, reported below.
    const watchdog = setTimeout(killNow, 15_000);
    if ('afterSpawn' in kill) timer = setTimeout(killNow, kill.afterSpawn);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.stdout.on('data', (d: string) => {
      stdout += d;
      let nl: number;
      // Only whole lines count: a line cut by the kill was never fully acknowledged.
      while ((nl = stdout.indexOf('\n')) >= 0) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        const [word, height, hash, id] = line.split(' ');
        if (word === 'ready') ready = true;
        else if (word === 'ack' && height && hash && id) {
          acks.push({ height: Number(height), hash, id });
          if (acks.length === 1 && 'afterFirstAck' in kill) timer = setTimeout(killNow, kill.afterFirstAck);
        } else {
          stderr += `unexpected stdout line: ${line}\n`;
        }
      }
    });
    child.on('error', reject);
    // 'close' fires once the process has exited and its pipes are drained, so no acknowledged line is missed.
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      clearTimeout(timer);
      if (signal !== 'SIGKILL') {
        reject(new Error(`save loop exited by itself (code ${code}, signal ${signal}):\n${stderr}`));
        return;
      }
      resolve({ acks, ready, stderr });
    });
  });
}

/** readChain returns every stored block, page by page. */
async function readChain(ledger: Ledger): Promise<Block[]> {
  const blocks: Block[] = [];
  for (let from = 0; from <= ledger.head.index; from += 1000) blocks.push(...(await ledger.chain(from, 1000)));
  return blocks;
}

describe('crash durability (SIGKILL during saves)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('crash'));
  });
  afterAll(async () => {
    await cleanup();
  });

  it('keeps every acknowledged save across repeated SIGKILLs, and the chain verifies after each', async () => {
    const dataDir = `${dir}/data`;
    const acked: Ack[] = [];
    const started = Date.now();
    let kills = 0;
    let startupKills = 0;
    let tornCuts = 0;
    let iteration = 0;
    while (kills < MIN_KILLS || acked.length < MIN_ACKS) {
      if (Date.now() - started > BUDGET_MS) {
        throw new Error(
          `budget exceeded: only ${kills} kills and ${acked.length} acknowledged saves in ${BUDGET_MS} ms`,
        );
      }
      iteration++;
      // Every 4th run is killed while it starts up (loading tsx, opening the store, cutting a torn tail): a crash
      // there must not lose anything either. The others are killed 20-300 ms into their acknowledged saves.
      const startup = iteration % 4 === 0;
      const run = await runChild(dataDir, startup ? { afterSpawn: rand(0, 900) } : { afterFirstAck: rand(20, 300) });
      if (!startup) {
        expect(run.acks.length, `child acknowledged nothing before the kill:\n${run.stderr}`).toBeGreaterThan(0);
        kills++;
      } else startupKills++;
      acked.push(...run.acks);

      // Reopen in this process (the child is dead; its LOCK names a dead pid and is taken over).
      const { logger, lines } = captureLogger();
      let ledger: Ledger;
      try {
        ledger = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES), logger });
      } catch (err) {
        throw new Error(
          `reopening after kill #${kills + startupKills} failed: ${errorInfo(err)}\nchild stderr:\n${run.stderr}`,
        );
      }
      try {
        if (lines.some((l) => l.level === 40 && typeof l.tornBytes === 'number')) tornCuts++;
        const maxAcked = Math.max(-1, ...acked.map((a) => a.height));
        expect(ledger.head.index, 'the reopened head is behind an acknowledged save').toBeGreaterThanOrEqual(maxAcked);

        const blocks = await readChain(ledger);
        expect(blocks.length).toBe(ledger.head.index + 1);
        const lost: string[] = [];
        for (const a of acked) {
          const block = blocks[a.height];
          const holds = block?.transactions.some((tx) => tx.type === 'register' && tx.property.id === a.id);
          if (!block || block.hash !== a.hash || !holds) {
            lost.push(
              `block ${a.height} ${a.hash.slice(0, 12)} (${a.id}): found ${block ? block.hash.slice(0, 12) : 'nothing'}`,
            );
          }
        }
        expect(
          lost,
          `${lost.length} acknowledged saves are missing or changed after kill #${kills + startupKills}`,
        ).toEqual([]);

        const ids = new Set(ledger.properties().map((p) => p.id));
        const missing = acked.filter((a) => !ids.has(a.id)).map((a) => a.id);
        expect(missing, 'acknowledged properties missing from the reopened ledger').toEqual([]);

        const report = await ledger.verify();
        expect(report).toEqual({ ok: true, totalBlocks: ledger.head.index + 1, headHash: ledger.head.hash });
      } finally {
        await ledger.close();
      }

      // Finished segments stay read-only across crashes; the last one is writable, unless the kill fell between
      // finishing it and creating the next (then it is full, and the next save rolls past it).
      const segs = await segmentFiles(dataDir);
      const badModes: string[] = [];
      for (const [k, p] of segs.entries()) {
        const m = await mode(p);
        const lastFull = k === segs.length - 1 && m === 0o400 && (await stat(p)).size >= SEGMENT_BYTES;
        const want = k < segs.length - 1 ? 0o400 : 0o600;
        if (m !== want && !lastFull) badModes.push(`${basename(p)} is ${m.toString(8)}, expected ${want.toString(8)}`);
      }
      expect(badModes).toEqual([]);
    }
    const ms = Date.now() - started;
    console.info(
      `crash test: ${kills} kills during saves + ${startupKills} during startup, ${acked.length} acknowledged saves, ` +
        `${tornCuts} torn tails cut, ${ms} ms`,
    );
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(acked.length).toBeGreaterThanOrEqual(MIN_ACKS);
  }, 90_000);
  // The very first start creates the generation folder, the first segment (header first) and the genesis block. A
  // kill in there acknowledged nothing, so the next start must simply create the ledger. Each attempt kills the child
  // as soon as its first segment file appears, which lands the kill inside that sequence most of the time.
  it('a SIGKILL during the very first start never leaves a store that refuses to open', async () => {
    const ATTEMPTS = 8;
    const problems: string[] = [];
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const dataDir = `${dir}/first-${attempt}`;
      const firstSegment = `${dataDir}/chain-000001/000000000000.seg`;
      await new Promise<void>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'test/support/save-loop.ts', dataDir, String(SEGMENT_BYTES)],
          {
            cwd: REPO,
            stdio: 'ignore',
          },
        );
        const poll = setInterval(() => {
          if (existsSync(firstSegment)) child.kill('SIGKILL');
        }, 0);
        const watchdog = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.on('error', reject);
        child.on('close', () => {
          clearInterval(poll);
          clearTimeout(watchdog);
          resolve();
        });
      });
      const size = existsSync(firstSegment) ? (await stat(firstSegment)).size : -1;
      try {
        const ledger = await Ledger.open({ config: testConfig(dataDir, SEGMENT_BYTES) });
        try {
          await ledger.register({ id: 'after-first-start', name: 'After', address: '1 Boot Lane', owner: 'o' });
          const report = await ledger.verify();
          if (!report.ok)
            problems.push(`attempt ${attempt} (first segment ${size} bytes): verify fails: ${report.reason}`);
        } finally {
          await ledger.close();
        }
      } catch (err) {
        problems.push(`attempt ${attempt} (first segment ${size} bytes at the kill): ${errorInfo(err)}`);
      }
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
