import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { RestoreSource } from './restore-source.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./restore-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** RestoreJob is what one child restores: a source, the key, and an empty target folder. */
export interface RestoreJob {
  source: RestoreSource;
  key: string;
  target: string;
}

/** RestoreOutcome is one child's report: the restore's wall time, blocks restored, and its memory (kB). */
export interface RestoreOutcome {
  ms: number;
  blocks: number;
  /** rssBeforeKb is the child's peak RSS just before the restore started (Node, tsx, modules, the open tier). */
  rssBeforeKb: number;
  /** peakRssKb is the child's peak RSS over its whole life, read right after the restore (VmHWM, see restore-child.ts). */
  peakRssKb: number;
}

/** restoreInChild runs one restore in a new Node process and removes its target folder afterwards. */
export async function restoreInChild(job: RestoreJob): Promise<RestoreOutcome> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(job)], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as RestoreOutcome;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`restore from ${job.source.tier} failed: ${e.stderr?.slice(-2000) ?? e.message}`);
  } finally {
    await rm(job.target, { recursive: true, force: true });
  }
}
