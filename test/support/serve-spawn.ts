/**
 * A `pawledger serve` child that can be killed at any moment, before it listens too. serve-process.ts's startServe
 * hands out the child only once it listens, so a crash test cannot SIGKILL it while it restores, migrates or catches
 * a tier up; spawnServe returns the child at once, with `listening` resolving to the URL (or rejecting if the process
 * exits first) and `exited` to how it ended. It runs the same built command (BIN), the way a user runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './serve-process.js';

/** ServeExit is how a serve child ended: its exit code, or the signal that killed it. */
export interface ServeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** SpawnedServe is a `pawledger serve` child from the moment it is spawned. */
export interface SpawnedServe {
  child: ChildProcess;
  /** lines holds every line the child printed on stdout and stderr, in order. */
  lines: string[];
  /** spawnedAt is performance.now() at the spawn. */
  spawnedAt: number;
  /** listening resolves to the base URL once the child logs that it serves; it rejects if the child exits first. */
  listening: Promise<string>;
  /** exited resolves once the child has exited and its output is drained. */
  exited: Promise<ServeExit>;
  /**
   * waitForLine resolves true as soon as the child prints a line matching `re` (one printed already counts), or false
   * after `timeoutMs` or once the child has exited.
   */
  waitForLine(re: RegExp, timeoutMs: number): Promise<boolean>;
  /** kill sends `signal` (SIGKILL by default) unless the child has exited already, and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<ServeExit>;
}

/** spawnServe runs `pawledger serve` with `env` (plus PATH, PORT=0 and JSON logs unless given) in `cwd`. */
export function spawnServe(cwd: string, env: Record<string, string>): SpawnedServe {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const watchers = new Set<(line: string) => void>();
  const spawnedAt = performance.now();
  let onUrl: (url: string) => void = () => {};
  let listened = false;
  const exited = new Promise<ServeExit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const listening = new Promise<string>((resolve, reject) => {
    onUrl = (url) => {
      listened = true;
      resolve(url);
    };
    void exited.then((e) => {
      if (!listened) reject(new Error(`serve exited (code ${e.code}, signal ${e.signal}) before listening`));
    });
  });
  // A caller that never awaits `listening` (a kill during startup) must not see an unhandled rejection.
  listening.catch(() => {});
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (!line) continue;
        lines.push(line);
        for (const w of watchers) w(line);
        const m = /serving on (http:\/\/[^\s"]+)/.exec(line);
        if (m && !listened) onUrl(m[1]!);
      }
    });
    stream.on('end', () => {
      if (rest) lines.push(rest);
      rest = '';
    });
  }
  return {
    child,
    lines,
    spawnedAt,
    listening,
    exited,
    waitForLine: (re, timeoutMs) => {
      if (lines.some((l) => re.test(l))) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = (found: boolean) => {
          watchers.delete(watch);
          clearTimeout(timer);
          resolve(found);
        };
        const watch = (line: string) => {
          if (re.test(line)) done(true);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        watchers.add(watch);
        void exited.then(() => done(false));
      });
    },
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
