import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** TIME is GNU time, used to read a restic restore's peak RSS (%M); without it the column stays empty. */
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** INSTALL_HINT says how to get restic when it is missing. */
export const INSTALL_HINT =
  'restic is not installed: `apt-get install restic` (Debian/Ubuntu; this report was written with restic 0.14) adds the restic column';

/** resticVersion is `restic version`'s first line, or null when restic cannot be run. */
export async function resticVersion(): Promise<string | null> {
  try {
    return (await run('restic', ['version'])).stdout.trim().split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

/** ResticBackup is one `restic backup`: its wall time, restic's own total_duration, and what it added to the repository. */
export interface ResticBackup {
  wallMs: number;
  /** durationMs is the summary's total_duration: restic's own count, without process start and key derivation. */
  durationMs: number;
  /** dataAdded is the summary's data_added: new bytes stored in the repository (after deduplication and compression). */
  dataAdded: number;
  filesChanged: number;
}

/** ResticRestore is one `restic restore latest`: its wall time and, with GNU time, the restic process's peak RSS. */
export interface ResticRestore {
  wallMs: number;
  peakRssKb: number | null;
}

/**
 * ResticRepo is a restic repository in a local folder, driven through the restic command with RESTIC_PASSWORD in the
 * child's environment and a cache folder of its own (--cache-dir), so nothing outside the benchmark's folders changes.
 */
export class ResticRepo {
  private constructor(
    readonly repo: string,
    readonly cache: string,
  ) {}

  static async init(repo: string, cache: string): Promise<ResticRepo> {
    const r = new ResticRepo(repo, cache);
    await r.#restic(['init']);
    return r;
  }

  #env(): NodeJS.ProcessEnv {
    return { ...process.env, RESTIC_PASSWORD: 'pawledger-bench', RESTIC_PROGRESS_FPS: '0.0001' };
  }

  async #restic(args: string[]): Promise<string> {
    const { stdout } = await run('restic', ['-r', this.repo, '--cache-dir', this.cache, ...args], {
      env: this.#env(),
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  }

  /** backup snapshots `path` (incremental after the first: restic reuses the previous snapshot of the same path). */
  async backup(path: string): Promise<ResticBackup> {
    const t = performance.now();
    const out = await this.#restic(['backup', '--json', '--host', 'pawledger-bench', path]);
    const wallMs = performance.now() - t;
    const summary = out
      .split('\n')
      .filter((l) => l.includes('"message_type":"summary"'))
      .map((l) => JSON.parse(l) as Record<string, number>)
      .at(-1);
    if (!summary) throw new Error(`restic backup printed no summary: ${out.slice(-500)}`);
    return {
      wallMs,
      durationMs: summary.total_duration! * 1000,
      dataAdded: summary.data_added!,
      filesChanged: summary.files_changed! + summary.files_new!,
    };
  }

  /** restoreLatest restores the newest snapshot into `target` (which it removes afterwards). */
  async restoreLatest(target: string): Promise<ResticRestore> {
    const args = ['-r', this.repo, '--cache-dir', this.cache, 'restore', 'latest', '--target', target, '--quiet'];
    const rssFile = `${target}.rss`;
    const t = performance.now();
    if (TIME)
      await run(TIME, ['-f', '%M', '-o', rssFile, 'restic', ...args], {
        env: this.#env(),
        maxBuffer: 64 * 1024 * 1024,
      });
    else await run('restic', args, { env: this.#env(), maxBuffer: 64 * 1024 * 1024 });
    const wallMs = performance.now() - t;
    const peakRssKb = TIME ? Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) : null;
    await rm(rssFile, { force: true });
    await rm(target, { recursive: true, force: true });
    return { wallMs, peakRssKb: Number.isFinite(peakRssKb) ? peakRssKb : null };
  }
}
