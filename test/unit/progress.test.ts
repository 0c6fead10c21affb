import { describe, expect, it } from 'vitest';
import { formatSeconds, progressLog } from '../../src/cli/progress.js';
import type { Logger } from '../../src/log.js';
import { progressTask, reportProgress, type ProgressEvent } from '../../src/util/progress.js';

describe('progressTask', () => {
  it('reports nowhere outside reportProgress', () => {
    const task = progressTask('verify', 10);
    task.update(5);
    task.end();
  });

  it('reaches the listener of the work that started it, however deep, at most every 50 ms and at the end', async () => {
    const events: ProgressEvent[] = [];
    let t = 0;
    await reportProgress(
      (e) => events.push(e),
      async () => {
        await new Promise((r) => setTimeout(r, 1));
        const task = progressTask('restore db backup 7', 100, () => t);
        for (let done = 1; done <= 100; done++) {
          t += 2;
          task.update(done);
        }
        task.end();
        task.update(100);
      },
    );
    expect(events[0]).toMatchObject({ kind: 'start', done: 0, total: 100 });
    expect(events.at(-1)).toMatchObject({ kind: 'end', done: 100, elapsedMs: 200 });
    const advances = events.filter((e) => e.kind === 'advance');
    expect(advances.length).toBe(4);
    expect(advances.at(-1)).toMatchObject({ done: 100 });
  });

  it('never lets a failing listener fail the work', () => {
    const done = reportProgress(
      () => {
        throw new Error('the terminal went away');
      },
      () => {
        const task = progressTask('export', 1);
        task.update(1);
        task.end();
        return 'done';
      },
    );
    expect(done).toBe('done');
  });
});

describe('progressLog (serve)', () => {
  function logged(events: Partial<ProgressEvent>[]): string[] {
    const lines: string[] = [];
    const log = { info: (_fields: unknown, message: string) => lines.push(message) } as unknown as Logger;
    const listener = progressLog(log, 5000);
    for (const e of events)
      listener({ task: 'restore db backup 9', total: 1000, done: 0, elapsedMs: 0, kind: 'advance', ...e });
    return lines;
  }

  it('logs a long task every few seconds with its speed and time left, and its end', () => {
    const lines = logged([
      { kind: 'start' },
      { done: 100, elapsedMs: 1000 },
      { done: 500, elapsedMs: 5000 },
      { done: 600, elapsedMs: 6000 },
      { done: 1000, elapsedMs: 10000 },
      { kind: 'end', done: 1000, elapsedMs: 10000 },
    ]);
    expect(lines).toEqual([
      'restore db backup 9: 500 of 1000 blocks (100 blocks/s, 5s left)',
      'restore db backup 9: 1000 of 1000 blocks (100 blocks/s, 0s left)',
      'restore db backup 9: 1000 of 1000 blocks in 10s',
    ]);
  });

  it('says nothing of a short task', () => {
    expect(
      logged([{ kind: 'start' }, { done: 1000, elapsedMs: 800 }, { kind: 'end', done: 1000, elapsedMs: 800 }]),
    ).toEqual([]);
  });

  it('formats durations for people', () => {
    expect([formatSeconds(null), formatSeconds(42.4), formatSeconds(185), formatSeconds(3720)]).toEqual([
      '?',
      '42s',
      '3m05s',
      '1h02m',
    ]);
  });
});
