import cliProgress from 'cli-progress';
import type { Logger } from '../log.js';
import {
  PROGRESS_LOG_EVERY_MS,
  rate,
  reportProgress,
  type ProgressEvent,
  type ProgressListener,
} from '../util/progress.js';

/**
 * How the CLI shows the progress the engine reports (util/progress.ts): bars on a terminal, log lines in `serve`.
 * A command wraps its work in `withProgressBars`; whatever long work it does underneath (a restore, a verification,
 * an export, an import, a prune's verifications, a drill) then shows a bar with blocks per second and time left,
 * without the command knowing which.
 */

/** formatSeconds says a duration the way a person reads it: 42s, 3m05s, 1h02m. */
export function formatSeconds(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** LABEL_WIDTH is the most a task's name takes on its bar's line; the line must fit an 80-column terminal. */
export const LABEL_WIDTH = 22;

const label = (task: string) => (task.length > LABEL_WIDTH ? `${task.slice(0, LABEL_WIDTH - 1)}…` : task);

// What a bar shows besides the bar: the task, blocks per second and the time left.
function payload(event: ProgressEvent): { task: string; speed: string; left: string } {
  const { perSecond, secondsLeft } = rate(event);
  return { task: label(event.task), speed: String(Math.round(perSecond)), left: formatSeconds(secondsLeft) };
}

/** ProgressBars draws one bar per task on a terminal stream; `stop` leaves the finished bars on screen. */
export class ProgressBars {
  readonly #bars: cliProgress.MultiBar;
  readonly #open = new Map<string, cliProgress.SingleBar>();

  constructor(stream: NodeJS.WriteStream) {
    this.#bars = new cliProgress.MultiBar(
      {
        stream,
        format: '{task} [{bar}] {percentage}% {value}/{total}, {speed} blocks/s, {left} left',
        // What is left of the line once the rest is drawn (a terminal cuts a longer line short).
        barsize: Math.max(6, Math.min(30, (stream.columns || 80) - 74)),
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /** listener turns progress events into bars. */
  readonly listener: ProgressListener = (event) => {
    // A task of unknown size shows its count as the total so far.
    const total = event.total ?? Math.max(event.done, 1);
    if (event.kind === 'start') {
      this.#open.get(event.task)?.stop();
      this.#open.set(event.task, this.#bars.create(total, event.done, payload(event)));
      return;
    }
    const bar = this.#open.get(event.task);
    if (!bar) return;
    bar.setTotal(total);
    bar.update(event.done, payload(event));
    if (event.kind === 'end') this.#open.delete(event.task);
  };

  /** stop draws the bars a last time and gives the terminal back. */
  stop(): void {
    this.#bars.stop();
  }
}

/**
 * withProgressBars runs `work` with bars on stderr when it is a terminal and the output is not JSON; on a pipe, in a
 * file or with --json it adds nothing at all.
 */
export async function withProgressBars<T>(options: { json?: boolean | undefined }, work: () => Promise<T>): Promise<T> {
  const stream = process.stderr;
  if (options.json || !stream.isTTY) return work();
  const bars = new ProgressBars(stream);
  // The bars hide the cursor and turn line wrapping off: an interrupt gives the terminal back before it ends us.
  const interrupted = (signal: NodeJS.Signals) => {
    bars.stop();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    return await reportProgress(bars.listener, work);
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    bars.stop();
  }
}

/**
 * progressLog returns a listener that logs a task's progress every `everyMs` while it runs, and its end when it ran
 * that long: a short task logs nothing, a long startup restore shows that it moves and how long it has left.
 */
export function progressLog(log: Logger, everyMs = PROGRESS_LOG_EVERY_MS): ProgressListener {
  const lastLogged = new Map<string, number>();
  return (event) => {
    if (event.kind === 'start') {
      lastLogged.set(event.task, 0);
      return;
    }
    const last = lastLogged.get(event.task) ?? 0;
    if (event.kind === 'end') lastLogged.delete(event.task);
    if (event.kind === 'end' ? event.elapsedMs < everyMs : event.elapsedMs - last < everyMs) return;
    if (event.kind === 'advance') lastLogged.set(event.task, event.elapsedMs);
    const { perSecond, secondsLeft } = rate(event);
    const of = event.total === null ? '' : ` of ${event.total}`;
    const fields = {
      task: event.task,
      done: event.done,
      total: event.total,
      blocksPerSecond: Math.round(perSecond),
      secondsLeft: secondsLeft === null ? null : Math.round(secondsLeft),
    };
    log.info(
      fields,
      event.kind === 'end'
        ? `${event.task}: ${event.done}${of} blocks in ${formatSeconds(event.elapsedMs / 1000)}`
        : `${event.task}: ${event.done}${of} blocks (${fields.blocksPerSecond} blocks/s, ${formatSeconds(secondsLeft)} left)`,
    );
  };
}
