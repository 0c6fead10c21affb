import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from './stats.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
/** CpuProfile is V8's .cpuprofile format (what `node --cpu-prof` writes too). */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** profiled runs fn under V8's sampling CPU profiler (interval in microseconds) and returns the profile. */
export async function profiled(fn: () => Promise<void>, intervalUs = 50): Promise<CpuProfile> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    await fn();
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    return profile;
  } finally {
    session.disconnect();
  }
}

function where(cf: CallFrame, root: string): string {
  if (!cf.url) return '';
  let path = cf.url;
  try {
    if (path.startsWith('file:')) path = relative(root, fileURLToPath(path));
  } catch {
    // keep the URL as it is
  }
  return `${path}:${cf.lineNumber + 1}`;
}

function label(cf: CallFrame, root: string): string {
  const at = where(cf, root);
  return `${cf.functionName || '(anonymous)'}${at ? ` ${at}` : ''}`;
}

/**
 * summarizeProfile prints where the time went: idle vs busy, the functions with the most self time, and the time
 * spent under each of pawledger's own functions (inclusive), per operation.
 */
export function summarizeProfile(profile: CpuProfile, root: string, ops: number, top = 15): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [i, id] of profile.samples.entries()) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const key = label(node.callFrame, root);
    self.set(key, (self.get(key) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at)!.callFrame;
      if (!cf.url.includes('/src/')) continue;
      const k = label(cf, root);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, `${((v * 1000) / ops).toFixed(1)}`, `${((100 * v) / total).toFixed(1)}%`]);
  return [
    `profiled ${ops} saves: ${total.toFixed(0)} ms of wall time, ${busy.toFixed(0)} ms on the main thread (${((100 * busy) / total).toFixed(0)}%), ` +
      `${idle.toFixed(0)} ms idle (waiting for fdatasync and PostgreSQL); ${((busy * 1000) / ops).toFixed(0)} us busy per save`,
    '',
    'Top self time:',
    table(['function', 'us/save', 'of wall'], rows(self), ['l', 'r', 'r']),
    '',
    'Inclusive time under src/ functions:',
    table(['function', 'us/save', 'of wall'], rows(inclusive), ['l', 'r', 'r']),
  ].join('\n');
}

/** saveProfile writes a profile where Chrome DevTools or speedscope can open it. */
export async function saveProfile(profile: CpuProfile, path: string): Promise<void> {
  await writeFile(path, JSON.stringify(profile));
}
