/**
 * The crash campaign, shortened for CI (the full one: `npm run crash-campaign -- --saves 1000 --mode all`). Each mode
 * runs the built `pawledger serve` on one data folder against a real throwaway PostgreSQL database and a real IPFS
 * tier, SIGKILLs it at random moments during saves (and during startup), restarts it and checks, after every restart,
 * that every acknowledged save is in the chain with its content and that the chain, the database and IPFS all verify
 * and reach the local head (test/support/crash-campaign.ts says exactly what is checked). 160 saves and 4 to 6 kills
 * per mode keep the file near 30 s on a 2-core machine.
 *
 * The seed is random (printed; a failed run keeps its work folder with the servers' logs and every op in
 * result.json); CRASH_SEED=N replays a run's plan.
 *
 * KNOWN BUGS the campaign found, each reproduced deterministically in campaign-known-bugs.test.ts with `it.fails`
 * (those tests pass while the bug is there; when one starts failing, the bug is fixed: drop its `.fails` there and its
 * exception below). The campaign tests let exactly these signatures through, print them loudly, and fail on anything
 * else:
 *   1. STALE IPFS HISTORY: an IPFS upload that completes while the database is unreachable is remembered in the
 *      pointer files but not in ipfs_backups, and nothing writes it there later; listBackups believes the database's
 *      history first, so `verify --from ipfs`, `backups list --tier ipfs` and startup all see an older manifest than
 *      /status does. On a wiped disk that loses acknowledged saves.
 *   2. IPFS NEVER RETRIED: after an upload fails, IpfsQueue schedules its retry with notify() while its own drain is
 *      still the running one, so no timer is set; IPFS stays lagging until the next save comes.
 *   3. TERMINATED BACKEND CRASHES SERVE: SqlClient.transaction() attaches its 'error' listener only after
 *      `await pool.connect()`; a FATAL (pg_terminate_backend, a server shutdown) that arrives in the same read as a
 *      new connection's first ReadyForQuery is emitted with no listener, and the process dies.
 */
import { rm, rmdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCampaign, type CampaignMode, type CampaignResult } from '../support/crash-campaign.js';
import { tempDir } from '../support/durability.js';

const SAVES = 160;
const MIN_KILLS = 4;
const seed = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : Math.floor(Math.random() * 2 ** 31);

let root: string;
beforeAll(async () => {
  ({ dir: root } = await tempDir('campaign'));
});
afterAll(async () => {
  // A passing run's work folder is gone; a failed one stays (its path is printed), and so does this folder.
  await rmdir(root).catch(() => {});
});

/** KNOWN BUG 1's signature: `verify --from ipfs` ends behind the head while /status says IPFS is level with it. */
function staleIpfsHistory(failure: string): boolean {
  const m = /pawledger verify --from ipfs verified backup .* but the local head is block (\d+) /.exec(failure);
  return m !== null && failure.includes(`["ipfs","ok",${m[1]}]`);
}

/**
 * KNOWN BUG 2's signature: IPFS lagging behind a level database while nothing was asked of IPFS for the last part of
 * the wait (no retry), and the `verify --from ipfs` that then names the last manifest uploaded before the failure.
 */
function ipfsNeverRetried(failure: string): boolean {
  if (/did not reach the local head .*\(IPFS writes in the last \d+ s of the wait: 0\)/.test(failure)) {
    return /"name":"db","state":"ok"/.test(failure) && /"name":"ipfs","state":"lagging"/.test(failure);
  }
  return /pawledger verify --from ipfs verified backup .* but the local head is block \d+ .*\["ipfs","lagging",-?\d+\]/.test(
    failure,
  );
}

/**
 * KNOWN BUG 3's signature: the server died by itself of an unhandled 'error' event from a pg client that a
 * terminated backend's FATAL message reached (the campaign restarts it and checks everything as after a kill).
 */
function terminatedBackendCrash(problem: string): boolean {
  return /the server exited by itself .*Unhandled 'error' event.*terminating connection due to administrator command/.test(
    problem,
  );
}

async function campaign(
  mode: CampaignMode,
  offset: number,
  knownBugs: { name: string; matches: (f: string) => boolean }[] = [],
) {
  const r: CampaignResult = await runCampaign({
    mode,
    seed: seed + offset,
    saves: SAVES,
    root,
    clients: 4,
    acksPerKill: [35, 45],
    startupKillChance: 0.15,
    tierTimeoutMs: 10_000,
  });
  const failed = r.lost.length + r.verifyFailures.length + r.problems.length > 0;
  console.info(
    `campaign mode ${mode} seed ${r.seed}: ${r.kills} kills (${r.saveKills} during saves, ${r.startupKills} during startup), ` +
      `${r.acked} acknowledged saves, ${r.lost.length} lost, ${r.verifyFailures.length} verification failures, ` +
      `${r.problems.length} other problems, ${r.doubtful} cut in flight (${r.doubtfulSaved} found saved), ` +
      `faults ${JSON.stringify(r.faults)}, ${r.durationMs} ms (${JSON.stringify(r.spentMs)})${failed ? `, work folder ${r.workDir}` : ''}`,
  );
  const known = (f: string) => knownBugs.some((b) => b.matches(f));
  const unknownFailures = r.verifyFailures.filter((f) => !known(f));
  const unknownProblems = r.problems.filter((p) => !known(p));
  for (const l of r.lost) console.error(`campaign mode ${mode} seed ${r.seed}: LOST ${l}`);
  for (const f of unknownFailures) console.error(`campaign mode ${mode} seed ${r.seed}: VERIFY FAILED ${f}`);
  for (const p of unknownProblems) console.error(`campaign mode ${mode} seed ${r.seed}: PROBLEM ${p}`);
  for (const b of knownBugs) {
    const seen = [...r.verifyFailures, ...r.problems].filter((f) => b.matches(f));
    if (seen.length > 0)
      console.warn(
        `campaign mode ${mode} seed ${r.seed}: KNOWN BUG "${b.name}" seen ${seen.length} time(s):\n  ${seen.join('\n  ')}`,
      );
  }
  expect(r.lost, 'acknowledged saves lost').toEqual([]);
  expect(unknownFailures, 'verification failures').toEqual([]);
  expect(unknownProblems, 'other problems').toEqual([]);
  expect(r.acked).toBeGreaterThanOrEqual(SAVES);
  expect(r.kills).toBeGreaterThanOrEqual(MIN_KILLS);
  // Only the known bugs were seen (or nothing): their evidence is printed above, the work folder can go.
  await rm(r.workDir, { recursive: true, force: true });
  return r;
}

describe('crash campaign (SIGKILL during saves, every tier verified after each restart)', () => {
  it('mode A: PostgreSQL and the embedded IPFS blockstore', async () => {
    await campaign('A', 0);
  }, 60_000);

  it('mode B: the database cut (refused, blackholed, backends terminated) through a proxy', async () => {
    // KNOWN BUG 1 (see the top of the file): a cut while an IPFS upload completes leaves the database's IPFS
    // history stale. KNOWN BUG 3: pg_terminate_backend can crash the server. Remove each exception once
    // campaign-known-bugs.test.ts's test of that bug passes without .fails.
    const r = await campaign('B', 1, [
      { name: 'stale IPFS history in the database', matches: staleIpfsHistory },
      { name: 'a terminated backend crashes the server', matches: terminatedBackendCrash },
    ]);
    expect(Object.keys(r.faults).length, 'no database fault was injected').toBeGreaterThan(0);
  }, 60_000);

  it('mode C: IPFS through the Pinata stand-in answering bursts of 429 and 5xx', async () => {
    // KNOWN BUG 2 (see the top of the file): an upload that failed is retried only by the next save. Remove this
    // exception once campaign-known-bugs.test.ts's KNOWN BUG 2 passes without .fails.
    const r = await campaign('C', 2, [{ name: 'a failed IPFS upload is never retried', matches: ipfsNeverRetried }]);
    expect(Object.keys(r.faults).length, 'no Pinata fault was injected').toBeGreaterThan(0);
  }, 60_000);
});
