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
 * Three bugs the campaign found are fixed, each with a deterministic regression test in campaign-regressions.test.ts:
 * the database's list of IPFS backups left behind by an upload made while it was down, a failed upload retried only
 * by the next save, and a backend terminated right after it connected crashing the server. Nothing is tolerated here.
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

async function campaign(mode: CampaignMode, offset: number) {
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
  for (const l of r.lost) console.error(`campaign mode ${mode} seed ${r.seed}: LOST ${l}`);
  for (const f of r.verifyFailures) console.error(`campaign mode ${mode} seed ${r.seed}: VERIFY FAILED ${f}`);
  for (const p of r.problems) console.error(`campaign mode ${mode} seed ${r.seed}: PROBLEM ${p}`);
  expect(r.lost, 'acknowledged saves lost').toEqual([]);
  expect(r.verifyFailures, 'verification failures').toEqual([]);
  expect(r.problems, 'other problems').toEqual([]);
  expect(r.acked).toBeGreaterThanOrEqual(SAVES);
  expect(r.kills).toBeGreaterThanOrEqual(MIN_KILLS);
  // All held: the work folder can go.
  await rm(r.workDir, { recursive: true, force: true });
  return r;
}

describe('crash campaign (SIGKILL during saves, every tier verified after each restart)', () => {
  it('mode A: PostgreSQL and the embedded IPFS blockstore', async () => {
    await campaign('A', 0);
  }, 240_000);

  it('mode B: the database cut (refused, blackholed, backends terminated) through a proxy', async () => {
    const r = await campaign('B', 1);
    expect(Object.keys(r.faults).length, 'no database fault was injected').toBeGreaterThan(0);
  }, 240_000);

  it('mode C: IPFS through the Pinata stand-in answering bursts of 429 and 5xx', async () => {
    const r = await campaign('C', 2);
    expect(Object.keys(r.faults).length, 'no Pinata fault was injected').toBeGreaterThan(0);
  }, 240_000);
});
