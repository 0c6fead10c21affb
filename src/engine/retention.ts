import { ConfigError, ValidationError } from '../errors.js';

/**
 * RetentionPolicy says which backups a prune keeps. Rules combine as restic's `forget` does: a backup stays if any
 * keep rule keeps it. Without olderThan every backup no rule keeps goes; with it, only those older than it may go.
 * Protected backups and the newest one that verifies always stay, whatever the policy.
 */
export interface RetentionPolicy {
  /** olderThan limits removal to backups older than this: a number and h, d or w ('12h', '30d', '8w'). */
  olderThan?: string;
  /** keepLast keeps the N newest backups. */
  keepLast?: number;
  /** keepHourly keeps the newest backup of each of the N most recent hours that have one (UTC). */
  keepHourly?: number;
  /** keepDaily keeps the newest backup of each of the N most recent days that have one (UTC). */
  keepDaily?: number;
  /** keepWeekly keeps the newest backup of each of the N most recent ISO weeks that have one (UTC). */
  keepWeekly?: number;
  /** keepMonthly keeps the newest backup of each of the N most recent months that have one (UTC). */
  keepMonthly?: number;
}

/** RuleKey names one rule of a policy. */
export type RuleKey = keyof RetentionPolicy;

/** RULES lists the rules in the order reasons are given, with the name flags and LEDGER_RETENTION use. */
export const RULES: readonly { key: RuleKey; flag: string }[] = [
  { key: 'keepLast', flag: 'keep-last' },
  { key: 'keepHourly', flag: 'keep-hourly' },
  { key: 'keepDaily', flag: 'keep-daily' },
  { key: 'keepWeekly', flag: 'keep-weekly' },
  { key: 'keepMonthly', flag: 'keep-monthly' },
  { key: 'olderThan', flag: 'older-than' },
];

const MAX_COUNT = 1_000_000;
const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** parseDuration reads '12h', '30d' or '8w' as milliseconds; anything else is null (months are not a fixed length). */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,6})([hdw])$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) return null;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/**
 * policyFrom builds a policy from loose input (CLI flag strings, JSON numbers or strings): undefined and empty
 * values are left out. A bad value, or no rule at all, throws what `fail` makes of the rule and the reason.
 */
export function policyFrom(
  input: Partial<Record<RuleKey, unknown>>,
  fail: (rule: RuleKey | null, message: string) => Error,
): RetentionPolicy {
  const policy: RetentionPolicy = {};
  for (const { key } of RULES) {
    const v = input[key];
    if (v === undefined || v === null || v === '') continue;
    if (key === 'olderThan') {
      if (typeof v !== 'string' || parseDuration(v) === null)
        throw fail(key, 'must be a positive number followed by h, d or w (e.g. 12h, 30d, 8w)');
      policy.olderThan = v.trim();
      continue;
    }
    const n = typeof v === 'string' && /^\d{1,7}$/.test(v.trim()) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_COUNT)
      throw fail(key, `must be a whole number from 1 to ${MAX_COUNT}`);
    policy[key] = n;
  }
  if (Object.keys(policy).length === 0) {
    throw fail(null, `a retention policy needs at least one of ${RULES.map((r) => r.flag).join(', ')}`);
  }
  return policy;
}

/** parseRetention reads LEDGER_RETENTION's syntax, "keep-last=50,keep-daily=30,older-than=90d"; ConfigError names the bad part. */
export function parseRetention(text: string, source = 'LEDGER_RETENTION'): RetentionPolicy {
  const input: Partial<Record<RuleKey, unknown>> = {};
  const parts = new Map<RuleKey, string>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, value, extra] = part.split('=').map((s) => s.trim());
    const rule = RULES.find((r) => r.flag === name);
    if (!rule || value === undefined || value === '' || extra !== undefined) {
      throw new ConfigError(`${source}: ${JSON.stringify(part)} is not a rule`, {
        hint: `Write rules as name=value, separated by commas; names: ${RULES.map((r) => r.flag).join(', ')}`,
      });
    }
    if (parts.has(rule.key)) throw new ConfigError(`${source}: ${rule.flag} is given twice`);
    parts.set(rule.key, part);
    input[rule.key] = value;
  }
  return policyFrom(
    input,
    (rule, message) =>
      new ConfigError(
        rule
          ? `${source}: ${JSON.stringify(parts.get(rule))}: ${rule === 'olderThan' ? 'older-than' : 'the count'} ${message}`
          : `${source}: ${message}`,
        {
          hint: 'For example LEDGER_RETENTION="keep-last=50,keep-daily=30,older-than=90d"',
        },
      ),
  );
}

/** checkPolicy validates a policy given as an object (by a library user); ValidationError names the rule. */
export function checkPolicy(policy: RetentionPolicy): RetentionPolicy {
  return policyFrom(
    policy,
    (rule, message) => new ValidationError(rule ? `${rule} ${message}` : message, rule ?? 'policy'),
  );
}

/** describePolicy renders a policy in LEDGER_RETENTION's syntax, for logs and reports. */
export function describePolicy(policy: RetentionPolicy): string {
  return RULES.filter((r) => policy[r.key] !== undefined)
    .map((r) => `${r.flag}=${policy[r.key]}`)
    .join(',');
}

/** RetentionRecord is what the planner needs of a backup. */
export interface RetentionRecord {
  id: string;
  createdAt: Date;
  protected: boolean;
}

/** RetentionPlan is which backups stay (each with every reason) and which go (with the reason), newest first. */
export interface RetentionPlan {
  keep: { id: string; reasons: string[] }[];
  remove: { id: string; reason: string }[];
}

/** PlanOptions name backups kept whatever the policy. */
export interface PlanOptions {
  /** newestValidId is the newest backup that verifies: never removed ('newest valid'). */
  newestValidId?: string | null;
  /** alsoKeep maps more ids to the reason they stay (the service keeps the backup of the running head). */
  alsoKeep?: ReadonlyMap<string, string>;
}

type Period = 'hourly' | 'daily' | 'weekly' | 'monthly';

/** periodOf is the UTC period a time falls in: '2026-01-05T14', '2026-01-05', '2026-W02', '2026-01'. */
export function periodOf(period: Period, at: Date): string {
  const iso = at.toISOString();
  switch (period) {
    case 'hourly':
      return iso.slice(0, 13);
    case 'daily':
      return iso.slice(0, 10);
    case 'monthly':
      return iso.slice(0, 7);
    case 'weekly': {
      // ISO 8601: the week belongs to the year of its Thursday.
      const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
      day.setUTCDate(day.getUTCDate() + 4 - (day.getUTCDay() || 7));
      const week = Math.ceil(((day.getTime() - Date.UTC(day.getUTCFullYear(), 0, 1)) / 86_400_000 + 1) / 7);
      return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
    }
  }
}

const PERIOD_RULES: readonly { key: RuleKey; period: Period; flag: string }[] = [
  { key: 'keepHourly', period: 'hourly', flag: 'keep-hourly' },
  { key: 'keepDaily', period: 'daily', flag: 'keep-daily' },
  { key: 'keepWeekly', period: 'weekly', flag: 'keep-weekly' },
  { key: 'keepMonthly', period: 'monthly', flag: 'keep-monthly' },
];

/**
 * planRetention decides, without touching anything, which backups a policy keeps and which it removes. Backups are
 * ordered newest first by createdAt (ties keep the given order). keep-last keeps the N newest; each keep-<period>
 * keeps the newest backup of each of the N most recent periods that hold one, as restic's `forget` does. A backup is
 * removed only if no rule keeps it and, with olderThan, it is older than that (at `now`).
 */
export function planRetention(
  records: readonly RetentionRecord[],
  policy: RetentionPolicy,
  now: Date,
  options: PlanOptions = {},
): RetentionPlan {
  const p = checkPolicy(policy);
  const sorted = records
    .map((r, i) => ({ r, i }))
    .sort((a, b) => b.r.createdAt.getTime() - a.r.createdAt.getTime() || a.i - b.i)
    .map((x) => x.r);
  const reasons = new Map<string, string[]>(sorted.map((r) => [r.id, []]));
  const keep = (id: string, why: string) => reasons.get(id)!.push(why);
  for (const r of sorted) {
    if (r.protected) keep(r.id, 'protected');
    if (r.id === options.newestValidId) keep(r.id, 'newest valid');
    const also = options.alsoKeep?.get(r.id);
    if (also) keep(r.id, also);
  }
  if (p.keepLast) for (const r of sorted.slice(0, p.keepLast)) keep(r.id, `keep-last ${p.keepLast}`);
  for (const rule of PERIOD_RULES) {
    let left = p[rule.key] as number | undefined;
    let last: string | null = null;
    for (const r of sorted) {
      if (!left) break;
      const period = periodOf(rule.period, r.createdAt);
      if (period === last) continue;
      keep(r.id, `${rule.flag} ${period}`);
      last = period;
      left--;
    }
  }
  const cutoffMs = p.olderThan ? now.getTime() - parseDuration(p.olderThan)! : null;
  const plan: RetentionPlan = { keep: [], remove: [] };
  const keepRules = RULES.some((r) => r.key !== 'olderThan' && p[r.key] !== undefined);
  for (const r of sorted) {
    const why = reasons.get(r.id)!;
    if (cutoffMs !== null && r.createdAt.getTime() >= cutoffMs) why.push(`newer than ${p.olderThan}`);
    if (why.length > 0) plan.keep.push({ id: r.id, reasons: why });
    else
      plan.remove.push({
        id: r.id,
        reason:
          cutoffMs === null ? 'kept by no rule' : `older than ${p.olderThan}${keepRules ? ', kept by no rule' : ''}`,
      });
  }
  return plan;
}
