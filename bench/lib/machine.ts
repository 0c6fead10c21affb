import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { summarize } from './stats.js';

/** loadNow describes the machine's load at this moment: the load averages and, where the kernel has it, I/O pressure. */
export async function loadNow(): Promise<string> {
  const avg = (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).split(' ').slice(0, 3).join(' ');
  const io =
    (await readFile('/proc/pressure/io', 'utf8').catch(() => ''))
      .split('\n')[0]
      ?.replace(/^some /, '')
      .replace(/ total=\d+/, '') ?? '';
  return `load average ${avg}${io ? `, I/O pressure ${io}` : ''}`;
}

/** SETTINGS are the server settings that decide what a commit costs and what the WAL holds. */
const SETTINGS = [
  'fsync',
  'synchronous_commit',
  'wal_sync_method',
  'full_page_writes',
  'wal_compression',
  'shared_buffers',
  'max_wal_size',
  'checkpoint_timeout',
  'autovacuum',
];

/**
 * describeMachine names what a run ran on: CPUs, memory, Node, the PostgreSQL server (version and the settings
 * above, read through `client`) and the pawledger source (commit, and how many files under src/ differ from it).
 */
export async function describeMachine(client: pg.Client): Promise<string[]> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const version = (await client.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
  const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
    'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1) ORDER BY name',
    [SETTINGS],
  );
  let source = 'unknown';
  try {
    const git = (...a: string[]) =>
      execFileSync('git', a, { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    source = `${git('rev-parse', '--short', 'HEAD')}${dirty ? ` with ${dirty} uncommitted change(s) under src/` : ''}`;
  } catch {
    // not a git checkout
  }
  const unit = (u: string | null) => (u && u !== '' ? ` (${u})` : '');
  return [
    `pawledger source: commit ${source}`,
    `CPUs: ${cpus().length} (nproc) x ${model}; RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node ${process.version}`,
    `${version.split(' on ')[0]}; ${settings.rows.map((r) => `${r.name}=${r.setting}${unit(r.unit)}`).join(', ')}`,
  ];
}

/** LoadSampler reads the 1-minute load average every `intervalMs` while a run goes on. */
export class LoadSampler {
  readonly #samples: number[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(readonly intervalMs = 10_000) {
    const sample = () =>
      void readFile('/proc/loadavg', 'utf8').then(
        (t) => this.#samples.push(Number(t.split(' ')[0])),
        () => {},
      );
    sample();
    this.#timer = setInterval(sample, intervalMs);
    this.#timer.unref();
  }

  /** summary is the min, median and max of the samples so far. */
  summary(): string {
    if (this.#samples.length === 0) return 'load average not available';
    const s = summarize(this.#samples);
    return `1-minute load average sampled every ${this.intervalMs / 1000} s (${s.n} samples): min ${s.min.toFixed(2)}, median ${s.median.toFixed(2)}, max ${s.max.toFixed(2)}`;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
