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
export async function profiled(fn: () => Promise<void>, intervalUs: number): Promise<CpuProfile> {
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

// tsx compiles each file onto few lines, so a line number in a file: URL says nothing: name the file only.
function label(cf: CallFrame, root: string): string {
  const name = cf.functionName || '(anonymous)';
  if (!cf.url) return name;
  if (!cf.url.startsWith('file:')) return `${name} ${cf.url}:${cf.lineNumber + 1}`;
  let path = cf.url;
  try {
    path = relative(root, fileURLToPath(cf.url));
  } catch {
    // keep the URL as it is
  }
  return `${name} ${path}`;
}

// bucket names what a sample was doing, from the first frame (leaf upwards) that has a source location.
function bucket(stack: CallFrame[]): string {
  const leaf = stack[0]!;
  if (leaf.functionName === '(garbage collector)') return 'garbage collector';
  if (leaf.functionName === '(program)') return 'V8 runtime (program)';
  const owner = stack.find((cf) => cf.url !== '');
  const url = owner?.url ?? '';
  if (url.includes('/src/')) return 'pawledger JavaScript (src/)';
  if (/node_modules\/(pg|pg-protocol|pg-pool|pg-types)\//.test(url)) return 'pg driver JavaScript';
  if (/fs\/promises|node:fs|internal\/fs/.test(url))
    return 'fs calls (local store write + fdatasync, main-thread part)';
  if (/node:net|stream_base_commons|internal\/streams/.test(url)) return 'socket reads/writes (PostgreSQL connection)';
  if (url.startsWith('node:')) return 'other Node internals (promises, timers)';
  return 'other';
}

/**
 * summarizeProfile prints where the time went: idle vs busy, the functions with the most self time, and the time
 * spent under each of pawledger's own functions (inclusive), per operation.
 */
export function summarizeProfile(profile: CpuProfile, root: string, ops: number, intervalUs: number, top = 15): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const buckets = new Map<string, number>();
  for (const [i, id] of profile.samples.entries()) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!.callFrame);
    // Profiler.stop itself runs inside the window: leave its samples out.
    if (stack.some((cf) => cf.url === 'node:inspector')) continue;
    total += dt;
    const node = stack[0]!;
    if (node.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const key = label(node, root);
    self.set(key, (self.get(key) ?? 0) + dt);
    const b = bucket(stack);
    buckets.set(b, (buckets.get(b) ?? 0) + dt);
    const seen = new Set<string>();
    for (const cf of stack) {
      if (!cf.url.includes('/src/')) continue;
      const k = label(cf, root);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, `${((v * 1000) / ops).toFixed(1)}`, `${((100 * v) / total).toFixed(1)}%`]);
  return [
    `profiled ${ops} saves (sampling every ${intervalUs} us): ${total.toFixed(0)} ms of wall time, ${busy.toFixed(0)} ms on the main thread (${((100 * busy) / total).toFixed(0)}%), ` +
      `${idle.toFixed(0)} ms idle (waiting for fdatasync and PostgreSQL); ${((busy * 1000) / ops).toFixed(0)} us busy per save`,
    '',
    'Main-thread time by kind:',
    table(['kind', 'us/save', 'of wall'], rows(buckets), ['l', 'r', 'r']),
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
