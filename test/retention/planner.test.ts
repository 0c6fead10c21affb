/**
 * The retention planner on synthetic histories with controlled timestamps: each rule alone and combined, exactly
 * which backups remain, protected and newest-valid backups, and the policy syntax of flags and LEDGER_RETENTION.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import {
  describePolicy,
  parseRetention,
  periodOf,
  planRetention,
  policyFrom,
  type RetentionPolicy,
  type RetentionRecord,
} from '../../src/engine/retention.js';
import { ValidationError } from '../../src/errors.js';

const NOW = new Date('2026-03-15T12:00:00Z');

/** history makes records named by their time, newest first as a tier lists them. */
function history(times: string[], protectedIds: string[] = []): RetentionRecord[] {
  return times.map((t) => ({ id: t, createdAt: new Date(t), protected: protectedIds.includes(t) }));
}

const kept = (records: RetentionRecord[], policy: RetentionPolicy, newestValidId?: string) =>
  planRetention(records, policy, NOW, { newestValidId: newestValidId ?? null }).keep.map((k) => k.id);
const removed = (records: RetentionRecord[], policy: RetentionPolicy, newestValidId?: string) =>
  planRetention(records, policy, NOW, { newestValidId: newestValidId ?? null }).remove.map((k) => k.id);

// Every 6 hours from 2026-03-01 00:00 to 2026-03-15 06:00 (UTC), newest first: 58 backups over 15 days.
const sixHourly = Array.from({ length: 58 }, (_, i) =>
  new Date(Date.parse('2026-03-15T06:00:00Z') - i * 6 * 3_600_000).toISOString(),
);

describe('planRetention, one rule at a time', () => {
  it('keep-last keeps the N newest, whatever order they were listed in', () => {
    const recs = history([
      '2026-03-10T00:00:00.000Z',
      '2026-03-12T00:00:00.000Z',
      '2026-03-11T00:00:00.000Z',
      '2026-03-09T00:00:00.000Z',
    ]);
    expect(kept(recs, { keepLast: 2 })).toEqual(['2026-03-12T00:00:00.000Z', '2026-03-11T00:00:00.000Z']);
    expect(removed(recs, { keepLast: 2 })).toEqual(['2026-03-10T00:00:00.000Z', '2026-03-09T00:00:00.000Z']);
  });

  it('keep-daily keeps the newest backup of each of the N most recent days', () => {
    expect(kept(history(sixHourly), { keepDaily: 3 })).toEqual([
      '2026-03-15T06:00:00.000Z',
      '2026-03-14T18:00:00.000Z',
      '2026-03-13T18:00:00.000Z',
    ]);
  });

  it('keep-hourly counts hours that have a backup, as restic does, not wall-clock hours', () => {
    expect(kept(history(sixHourly), { keepHourly: 3 })).toEqual([
      '2026-03-15T06:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
      '2026-03-14T18:00:00.000Z',
    ]);
    const sameHour = history(['2026-03-15T10:59:00.000Z', '2026-03-15T10:01:00.000Z', '2026-03-15T09:30:00.000Z']);
    expect(kept(sameHour, { keepHourly: 5 })).toEqual(['2026-03-15T10:59:00.000Z', '2026-03-15T09:30:00.000Z']);
  });

  it('keep-weekly uses ISO weeks (Monday to Sunday, UTC)', () => {
    // 2026-03-15 is a Sunday (week 11), 2026-03-08 a Sunday (week 10), 2026-03-01 a Sunday (week 9).
    expect(periodOf('weekly', new Date('2026-03-15T23:59:59Z'))).toBe('2026-W11');
    expect(periodOf('weekly', new Date('2026-03-09T00:00:00Z'))).toBe('2026-W11');
    expect(periodOf('weekly', new Date('2021-01-03T12:00:00Z'))).toBe('2020-W53');
    expect(kept(history(sixHourly), { keepWeekly: 5 })).toEqual([
      '2026-03-15T06:00:00.000Z',
      '2026-03-08T18:00:00.000Z',
      '2026-03-01T18:00:00.000Z',
    ]);
  });

  it('keep-monthly keeps the newest backup of each month', () => {
    const recs = history([
      '2026-03-02T00:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
      '2026-02-28T23:00:00.000Z',
      '2026-02-01T00:00:00.000Z',
      '2026-01-31T00:00:00.000Z',
      '2025-12-31T00:00:00.000Z',
    ]);
    expect(kept(recs, { keepMonthly: 3 })).toEqual([
      '2026-03-02T00:00:00.000Z',
      '2026-02-28T23:00:00.000Z',
      '2026-01-31T00:00:00.000Z',
    ]);
  });

  it('older-than alone removes every backup older than the age and keeps the newer ones', () => {
    const recs = history(sixHourly);
    const plan = planRetention(recs, { olderThan: '12d' }, NOW);
    // Newer than 2026-03-03T12:00: 2026-03-03T12:00 itself is exactly 12 days old, which is not older.
    expect(plan.keep.at(-1)).toEqual({ id: '2026-03-03T12:00:00.000Z', reasons: ['newer than 12d'] });
    expect(plan.remove.map((r) => r.id)).toEqual(sixHourly.filter((t) => t < '2026-03-03T12:00:00.000Z'));
    expect(plan.remove[0]!.reason).toBe('older than 12d');
    expect(kept(recs, { olderThan: '36h' })).toEqual([
      '2026-03-15T06:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
      '2026-03-14T18:00:00.000Z',
      '2026-03-14T12:00:00.000Z',
      '2026-03-14T06:00:00.000Z',
      '2026-03-14T00:00:00.000Z',
    ]);
    expect(kept(recs, { olderThan: '2w' })).toHaveLength(56); // 2026-03-01T12:00 onwards
  });
});

describe('planRetention, combined rules', () => {
  it('a backup stays if any keep rule keeps it, with every reason', () => {
    const plan = planRetention(history(sixHourly), { keepLast: 2, keepDaily: 2, keepWeekly: 2 }, NOW);
    expect(plan.keep).toEqual([
      { id: '2026-03-15T06:00:00.000Z', reasons: ['keep-last 2', 'keep-daily 2026-03-15', 'keep-weekly 2026-W11'] },
      { id: '2026-03-15T00:00:00.000Z', reasons: ['keep-last 2'] },
      { id: '2026-03-14T18:00:00.000Z', reasons: ['keep-daily 2026-03-14'] },
      { id: '2026-03-08T18:00:00.000Z', reasons: ['keep-weekly 2026-W10'] },
    ]);
    expect(plan.remove).toHaveLength(54);
    expect(new Set(plan.remove.map((r) => r.reason))).toEqual(new Set(['kept by no rule']));
  });

  it('with older-than, only older backups that no rule keeps go', () => {
    // The 5 days 2026-03-10..14 are newer than 5d; of the older ones keep-weekly keeps the newest of weeks 10 and 9.
    const plan = planRetention(history(sixHourly), { olderThan: '5d', keepWeekly: 3 }, NOW);
    const ids = plan.keep.map((k) => k.id);
    expect(ids.filter((id) => id < '2026-03-10T12:00:00.000Z')).toEqual([
      '2026-03-08T18:00:00.000Z',
      '2026-03-01T18:00:00.000Z',
    ]);
    expect(ids.filter((id) => id >= '2026-03-10T12:00:00.000Z')).toHaveLength(20);
    expect(plan.remove[0]).toEqual({ id: '2026-03-10T06:00:00.000Z', reason: 'older than 5d, kept by no rule' });
    expect(plan.keep.length + plan.remove.length).toBe(58);
  });

  it('protected backups and the newest valid one always stay, whatever the policy', () => {
    const recs = history(sixHourly, ['2026-03-01T00:00:00.000Z']);
    // The newest backup does not verify: the one before it is the newest valid.
    const plan = planRetention(recs, { olderThan: '1h' }, NOW, { newestValidId: '2026-03-15T00:00:00.000Z' });
    expect(plan.keep).toEqual([
      { id: '2026-03-15T00:00:00.000Z', reasons: ['newest valid'] },
      { id: '2026-03-01T00:00:00.000Z', reasons: ['protected'] },
    ]);
    expect(plan.remove).toHaveLength(56);
    expect(kept(recs, { keepLast: 1 }, '2026-03-15T06:00:00.000Z')).toEqual([
      '2026-03-15T06:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
    ]);
  });

  it('alsoKeep adds reasons of the caller; an empty history plans nothing', () => {
    const plan = planRetention(history(sixHourly.slice(0, 3)), { keepLast: 1 }, NOW, {
      alsoKeep: new Map([['2026-03-14T18:00:00.000Z', 'running head']]),
    });
    expect(plan.keep.map((k) => [k.id, k.reasons])).toEqual([
      ['2026-03-15T06:00:00.000Z', ['keep-last 1']],
      ['2026-03-14T18:00:00.000Z', ['running head']],
    ]);
    expect(planRetention([], { keepLast: 1 }, NOW)).toEqual({ keep: [], remove: [] });
  });

  it('ties on time keep the order the tier listed them in', () => {
    const recs = [
      { id: 'b', createdAt: NOW, protected: false },
      { id: 'a', createdAt: NOW, protected: false },
    ];
    expect(kept(recs, { keepLast: 1 })).toEqual(['b']);
  });
});

describe('policy syntax', () => {
  it('reads LEDGER_RETENTION and writes it back', () => {
    const p = parseRetention(' keep-last=50, keep-daily=30 ,older-than=90d');
    expect(p).toEqual({ keepLast: 50, keepDaily: 30, olderThan: '90d' });
    expect(describePolicy(p)).toBe('keep-last=50,keep-daily=30,older-than=90d');
    const config = loadConfig({
      LEDGER_RETENTION: 'keep-weekly=8',
      LEDGER_RETENTION_INTERVAL_MS: '60000',
      LEDGER_DB: 'off',
    });
    expect(config.retention).toEqual({ keepWeekly: 8 });
    expect(config.retentionIntervalMs).toBe(60_000);
    expect(loadConfig({ LEDGER_DB: 'off' })).toMatchObject({ retention: null, retentionIntervalMs: 6 * 3_600_000 });
  });

  it.each([
    ['keep-last=50,keep-dayly=30', '"keep-dayly=30" is not a rule'],
    ['keep-last=0', '"keep-last=0": the count must be a whole number'],
    ['keep-last=-1', '"keep-last=-1": the count must be a whole number'],
    ['older-than=6m', '"older-than=6m": older-than must be a positive number followed by h, d or w'],
    ['older-than=30', '"older-than=30"'],
    ['keep-last', '"keep-last" is not a rule'],
    ['keep-last=2,keep-last=3', 'keep-last is given twice'],
    [',', 'needs at least one of keep-last'],
  ])('LEDGER_RETENTION=%j is a ConfigError naming the bad part', (text, message) => {
    expect(() => loadConfig({ LEDGER_RETENTION: text, LEDGER_DB: 'off' })).toThrow(
      expect.objectContaining({ code: 'CONFIG', message: expect.stringContaining(message) }),
    );
  });

  it('reads flag strings and JSON numbers; a bad one names its field', () => {
    const fail = (rule: string | null, message: string) => new ValidationError(`${rule} ${message}`, rule ?? 'policy');
    expect(policyFrom({ keepLast: '3', olderThan: '12h', keepDaily: undefined }, fail)).toEqual({
      keepLast: 3,
      olderThan: '12h',
    });
    expect(policyFrom({ keepMonthly: 12 }, fail)).toEqual({ keepMonthly: 12 });
    expect(() => policyFrom({ keepHourly: 2.5 }, fail)).toThrow(expect.objectContaining({ field: 'keepHourly' }));
    expect(() => policyFrom({ keepLast: '3x' }, fail)).toThrow(expect.objectContaining({ field: 'keepLast' }));
    expect(() => policyFrom({}, fail)).toThrow(expect.objectContaining({ field: 'policy' }));
    expect(() => planRetention([], {}, NOW)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
});
