import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Progress of long work, counted in blocks. The code doing the work (the engine: restores, verifications, exports,
 * imports, prunes, drills) opens a task with `progressTask` and says how far it is; whoever started the work decides
 * what progress becomes by running it inside `reportProgress` with a listener: bars on a terminal (cli/progress.ts), a
 * log line every few seconds (serve), or nothing at all, which is what happens outside `reportProgress`. The worker
 * never knows who listens, so the engine imports nothing of the CLI, and one listener serves every kind of work.
 */

/** ProgressEvent is a task's state: started, moved on, or ended (whether it succeeded or not). */
export interface ProgressEvent {
  /** task says what is being done, e.g. "verify db backup 42". */
  task: string;
  kind: 'start' | 'advance' | 'end';
  /** done is how many blocks are done so far. */
  done: number;
  /** total is how many blocks there are, when known. */
  total: number | null;
  /** elapsedMs is the time since the task started. */
  elapsedMs: number;
}

/** ProgressListener receives the events of every task started inside reportProgress; it must not throw. */
export type ProgressListener = (event: ProgressEvent) => void;

const listeners = new AsyncLocalStorage<ProgressListener>();

/** reportProgress runs `work` with `listener` receiving the progress of every task the work starts, however deep. */
export function reportProgress<T>(listener: ProgressListener, work: () => T): T {
  return listeners.run(listener, work);
}

/** ProgressTask is one task's handle: `update` with the blocks done so far, `end` once (further calls do nothing). */
export interface ProgressTask {
  update(done: number): void;
  end(): void;
}

/** PROGRESS_LOG_EVERY_MS is how often `serve` logs the progress of a long task by default (LEDGER_PROGRESS_LOG_MS). */
export const PROGRESS_LOG_EVERY_MS = 5000;

/** ADVANCE_EVERY_MS is the shortest time between two 'advance' events of one task. */
export const ADVANCE_EVERY_MS = 50;

const SILENT: ProgressTask = { update: () => {}, end: () => {} };

/** progressTask starts a task; outside reportProgress it costs nothing and reports nowhere. */
export function progressTask(task: string, total: number | null, now: () => number = Date.now): ProgressTask {
  const listener = listeners.getStore();
  if (!listener) return SILENT;
  const started = now();
  let done = 0;
  let ended = false;
  const emit = (kind: ProgressEvent['kind']) => {
    try {
      listener({ task, kind, done, total, elapsedMs: now() - started });
    } catch {
      // Progress is a courtesy: a listener's failure never fails the work it watches.
    }
  };
  emit('start');
  let emitted = started;
  return {
    update(n) {
      if (ended || n === done) return;
      done = n;
      // At most one event every ADVANCE_EVERY_MS (and the last one): a task may update once per block.
      const t = now();
      if (t - emitted < ADVANCE_EVERY_MS && n !== total) return;
      emitted = t;
      emit('advance');
    },
    end() {
      if (ended) return;
      ended = true;
      emit('end');
    },
  };
}

/** rate returns blocks per second and the seconds left (null when unknown) of a task, from one of its events. */
export function rate(event: ProgressEvent): { perSecond: number; secondsLeft: number | null } {
  const perSecond = event.elapsedMs > 0 ? (event.done * 1000) / event.elapsedMs : 0;
  const left = event.total === null ? null : Math.max(0, event.total - event.done);
  return { perSecond, secondsLeft: left === null || perSecond === 0 ? null : left / perSecond };
}
