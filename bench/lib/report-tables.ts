import type { CryptoFloor } from './crypto-floor.js';
import type { FloorResult } from './floors.js';
import type { Measurement } from './pawledger.js';
import type { Report } from './report-types.js';
import { bytes, ms, summarize, table } from './stats.js';
import { sealedChainBytes } from './storage.js';
import { coldStartTable } from './cold-start.js';
import { ROTATION_NOTE, rotationTable } from './rotation.js';
import { evaluateIssue14Targets, evaluateTargets, type TargetRow } from './targets.js';

const n = (v: number) => v.toLocaleString('en-US');
const med = (xs: readonly number[]) => summarize(xs).median;
const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const ratio = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : '-');

function perSave(r: Report): string[] {
  const rows = r.saves.map((s) => {
    const t = summarize(s.m.samples.map((x) => x.ms));
    const floors = med(s.m.floorsNowMs);
    const own = s.m.samples.every((x) => x.ownWal !== undefined) ? bytes(med(s.m.samples.map((x) => x.ownWal!))) : '-';
    const local = bytes(med(s.m.samples.map((x) => x.localBytes ?? Number.NaN)));
    const saves = s.m.samples.length;
    const ipfs = s.ipfsLevel ? bytes(s.ipfs.bytes / saves) : `>= ${bytes(s.ipfs.bytes / saves)} (IPFS lagging)`;
    const up = s.ipfs.uploadMs.length ? ms(med(s.ipfs.uploadMs)) : '-';
    return [
      n(s.m.chainLength),
      String(saves),
      ms(t.median),
      ms(t.p95),
      ms(floors),
      ratio(t.median / floors),
      local,
      own,
      bytes(s.m.rowBytes),
      ipfs,
      String(s.ipfs.uploadMs.length),
      up,
    ];
  });
  const stages = r.saves.flatMap((s) => {
    const names = Object.keys(s.m.samples[0]?.stages ?? {});
    return [[n(s.m.chainLength), ...names.map((name) => ms(med(s.m.samples.map((x) => x.stages[name]!))))]];
  });
  const stageNames = Object.keys(r.saves[0]?.m.samples[0]?.stages ?? {});
  const first = r.saves[0];
  const last = r.saves.at(-1);
  const lines = [
    '## 1. Per-save cost and bytes written to each tier',
    '',
    table(
      [
        'chain length',
        'saves',
        'median ms',
        'p95 ms',
        'floor ms',
        'median / floor',
        'local B/save',
        'db own WAL/save',
        'db rows B/save',
        'IPFS B/save (amortized)',
        'IPFS uploads',
        'IPFS upload median ms',
      ],
      rows,
      ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    `Saves were timed one at a time, ${first?.burst ?? '?'} back to back per ledger per round, the ledgers visited in rotating order. ` +
      'floor = median (PostgreSQL commit of one small row + 500-byte append+fdatasync), re-measured before each visit. ' +
      'local = bytes LocalStore.append wrote per save; db own WAL = median WAL bytes of this database per save (pg_walinspect); ' +
      'db rows = stored size of the rows a save inserted (block + backup record); IPFS = bytes handed to the embedded provider ' +
      '(new packs, re-uploaded merged packs, manifests) from the first measured save until IPFS held the last, over the saves.',
    '',
    table(['chain length', ...stageNames.map((s) => `${s} median ms`)], stages, [
      'r',
      ...stageNames.map(() => 'r' as const),
    ]),
    '',
  ];
  if (first && last && first !== last) {
    const a = summarize(first.m.samples.map((x) => x.ms));
    const b = summarize(last.m.samples.map((x) => x.ms));
    lines.push(
      `Flatness: per-save time at ${n(last.length)} over ${n(first.length)}: median ${ratio(b.median / a.median)}, p95 ${ratio(b.p95 / a.p95)}, mean ${ratio(b.mean / a.mean)}`,
      '',
    );
  }
  const growth = r.growth.map(
    (g) =>
      `- ${n(g.target)}: grown ${g.mode === 'sequential' ? 'one save at a time' : 'with 256 saves in flight (group commit: one backup record per burst)'} to ` +
      `${n(g.blocks)} blocks in ${g.seconds.toFixed(1)} s; meanwhile IPFS received ${bytes(g.ipfs.bytes)} in ${g.ipfs.uploadMs.length} uploads (${bytes(g.ipfs.bytes / g.saves)} per save` +
      `${g.ipfs.uploadMs.length ? `; upload median ${ms(med(g.ipfs.uploadMs))} ms, p95 ${ms(summarize(g.ipfs.uploadMs).p95)} ms` : ''})`,
  );
  lines.push('Growth before measuring:', '', ...growth, '');
  return lines;
}

function restores(r: Report): string[] {
  const floorOf = (blocks: number, origin: string) =>
    r.restoreFloors.find((f) => f.blocks === blocks && f.origin === origin);
  const rows = r.restores.map((s) => {
    const t = summarize(s.runs.map((o) => o.ms));
    const f = floorOf(s.blocks, s.origin);
    const floor = f?.copyMs.length ? med(f.copyMs) + med(f.decryptMs) : Number.NaN;
    return [
      n(s.blocks),
      s.origin === 'saves' ? 'saves' : 'loaded',
      s.tier,
      String(t.n),
      ms(t.median),
      ms(t.min),
      ms(t.max),
      ms((t.median * 1000) / s.blocks),
      mib(med(s.runs.map((o) => o.peakRssKb))),
      mib(med(s.runs.map((o) => o.rssBeforeKb))),
      s.tier === 'db' ? ratio(t.median / floor) : '-',
    ];
  });
  const floors = r.restoreFloors.map((f) => {
    const c = med(f.copyMs);
    const d = med(f.decryptMs);
    return [
      n(f.blocks),
      f.origin === 'saves' ? 'saves' : 'loaded',
      String(f.copyMs.length),
      f.copyMs.length ? ms(c) : '-',
      ms(d),
      f.copyMs.length ? ms(c + d) : '-',
      f.buildMs === undefined ? '-' : `${(f.buildMs / 1000).toFixed(1)} s`,
    ];
  });
  return [
    '## 2. Restore from each tier',
    '',
    table(
      [
        'blocks',
        'chain made by',
        'tier',
        'runs',
        'median ms',
        'min ms',
        'max ms',
        'us/block',
        'peak RSS (median)',
        'RSS before restore',
        'median / (COPY + decrypt)',
      ],
      rows,
      ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'Each run is one child process: restoreInto an empty local store (fetch, decrypt, verify every block, write, switch). ' +
      "peak RSS = the child's VmHWM (/proc/self/status) after the restore; RSS before = the same just before it started " +
      "(not process.resourceUsage().maxRSS: Linux carries the parent's peak into a child's maxrss at fork). " +
      '"saves": the ledger grown by saves in part 1; "loaded": blocks of the same size appended to the tiers in batches, with one record.',
    '',
    table(
      [
        'blocks',
        'chain made by',
        'runs',
        'COPY to /dev/null ms',
        'decrypt every block ms',
        'COPY + decrypt ms',
        'load into 4 tiers',
      ],
      floors,
      ['r', 'l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'COPY = psql running COPY (the packs of ledger_packs UNION ALL the loose blocks of ledger_blocks, in chain order) TO STDOUT (FORMAT binary), output to /dev/null. ' +
      'decrypt = opening every pack and every loose block once (AES-256-GCM with its context), pages already in memory. Medians of the runs.',
    '',
  ];
}

function storage(r: Report): string[] {
  const names = ['ledger_blocks', 'ledger_packs', 'blockchain_backups', 'ipfs_backups'];
  const rows = r.storage.map((s) => {
    const st = s.storage;
    const other = st.total - names.reduce((a, t) => a + (st.tables[t] ?? 0), 0);
    return [
      n(st.blocks - 1),
      n(st.blocks),
      n(st.records),
      n(st.ipfsRecords),
      s.mode === 'sequential' ? 'one per save' : 'bursts',
      bytes(sealedChainBytes(st)),
      bytes(sealedChainBytes(st) / st.blocks),
      ...names.map((t) => bytes(st.tables[t] ?? 0)),
      bytes(other),
      bytes(st.total),
      ratio(st.total / sealedChainBytes(st)),
      bytes(st.total / (st.blocks - 1)),
    ];
  });
  return [
    '## 3. Database storage after n saves',
    '',
    table(
      [
        'saves n',
        'blocks',
        'backup records',
        'ipfs_backups rows',
        'records made',
        'encrypted chain',
        'sealed B/block',
        'ledger_blocks',
        'ledger_packs',
        'blockchain_backups',
        'ipfs_backups',
        'other tables',
        'database total',
        'total / chain',
        'total per save',
      ],
      rows,
      ['r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    "Sizes are pg_total_relation_size (heap, indexes, TOAST, free space and visibility maps) of pawledger's tables, read after every save " +
      'of part 1 and after IPFS caught up. encrypted chain = the sealed chain: the sealed lengths of the loose blocks (ledger_blocks) and of the packs the chain reads (ledger_packs; blocks counts packed heights too). n = blocks - 1 (the genesis block is no save).',
    '',
  ];
}

function naive(ms_: Measurement[]): string[] {
  if (ms_.length === 0) return [];
  const rows = ms_.map((m) => {
    const t = summarize(m.samples.map((s) => s.ms));
    return [
      n(m.chainLength),
      String(t.n),
      ms(t.median),
      ms(t.p95),
      bytes(med(m.samples.map((s) => s.wal))),
      bytes(m.rowBytes),
    ];
  });
  return [
    '### 4a. The naive design (whole chain as JSON, sealed, written and inserted on every save)',
    '',
    table(['chain length', 'saves', 'median ms', 'p95 ms', 'WAL/save median (cluster-wide)', 'row B/save'], rows, [
      'r',
      'r',
      'r',
      'r',
      'r',
      'r',
    ]),
    '',
  ];
}

function restic(r: Report): string[] {
  if (typeof r.restic === 'string') return ['### 4b. restic on the same ledger', '', r.restic, ''];
  const rows = r.restic.map((x) => {
    const s = r.saves.find((y) => y.length === x.length);
    const save = s ? med(s.m.samples.map((y) => y.ms)) : Number.NaN;
    const up = s?.ipfs.uploadMs.length ? med(s.ipfs.uploadMs) : Number.NaN;
    const inc = med(x.incrementals.map((b) => b.durationMs));
    const rss = x.restores.map((y) => y.peakRssKb).filter((y): y is number => y !== null);
    return [
      n(x.blocks),
      bytes(x.folderBytes),
      `${(x.first.wallMs / 1000).toFixed(2)} s`,
      String(x.incrementals.length),
      ms(med(x.incrementals.map((b) => b.wallMs))),
      ms(inc),
      bytes(med(x.incrementals.map((b) => b.dataAdded))),
      bytes(x.repoBytes),
      String(x.restores.length),
      ms(med(x.restores.map((y) => y.wallMs))),
      rss.length ? mib(med(rss)) : '-',
      ms(save),
      `${(inc / save).toFixed(0)}x`,
      Number.isFinite(up) ? ms(up) : '-',
      Number.isFinite(up) ? `${(inc / up).toFixed(1)}x` : '-',
    ];
  });
  return [
    "### 4b. restic backing up the same ledger's data folder after each save",
    '',
    table(
      [
        'blocks',
        'data folder',
        'first backup',
        'incrementals',
        'incremental wall ms',
        'incremental restic ms',
        'restic added/backup',
        'repo size',
        'restores',
        'restore median ms',
        'restore peak RSS',
        'pawledger save ms',
        'restic / save',
        'pawledger IPFS upload ms',
        'restic / upload',
      ],
      rows,
      ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'One pawledger save, then `restic backup <data folder>` (incremental: the previous snapshot is its parent). wall = the command; restic ms = the ' +
      "summary's total_duration (without process start and key derivation). restic added = the summary's data_added. restore = " +
      '`restic restore latest --target <empty folder>`, peak RSS from GNU time. pawledger figures are the medians of part 1 at the same length.',
    '',
  ];
}

function floors(f: FloorResult[], c: CryptoFloor[]): string[] {
  const rows = f.map((x) => {
    const s = summarize(x.times);
    return [x.name, String(s.n), ms(s.median), ms(s.p95), x.ownWal ? bytes(med(x.ownWal)) : '-'];
  });
  const crypto = c.map((x) => {
    const s = summarize(x.runs);
    return [
      x.name,
      `${x.runs.length} x ${n(x.calls)}`,
      x.unit === 'MB/s' ? s.median.toFixed(0) : s.median.toFixed(2),
      x.unit,
      x.unit === 'MB/s' ? s.min.toFixed(0) : s.min.toFixed(2),
      x.unit === 'MB/s' ? s.max.toFixed(0) : s.max.toFixed(2),
    ];
  });
  return [
    '### 4c. Floors',
    '',
    table(['operation', 'ops', 'median ms', 'p95 ms', 'own WAL/op'], rows, ['l', 'r', 'r', 'r', 'r']),
    '',
    table(['operation', 'runs x calls', 'median', 'unit', 'min', 'max'], crypto, ['l', 'r', 'r', 'l', 'r', 'r']),
    '',
  ];
}

const verdict = (t: TargetRow) => (t.met === null ? 'not measured' : t.met ? 'met' : 'not met');

function targets(r: Report): string[] {
  if (r.mode === 'quick') {
    return [
      '## 5. Targets of issue #7',
      '',
      'Targets are judged in the full mode only (quick mode has no 100k chain and asserts no absolute times); its flatness ratio is printed in part 1.',
      '',
    ];
  }
  const rows = evaluateTargets(r).map((t) => [t.target, t.measured, t.goal, verdict(t)]);
  return [
    '## 5. Targets of issue #7',
    '',
    table(['target', 'measured', 'goal', 'result'], rows, ['l', 'l', 'l', 'l']),
    '',
  ];
}

function issue14(r: Report): string[] {
  const list = evaluateIssue14Targets(r);
  const rows = list.map((t) => [t.target, t.measured, t.goal, verdict(t)]);
  const count = (v: boolean | null) => list.filter((t) => t.met === v).length;
  return [
    '## 6. Targets of issue #14',
    '',
    table(['target', 'measured', 'goal', 'result'], rows, ['l', 'l', 'l', 'l']),
    '',
    `${count(true)} met, ${count(false)} not met, ${count(null)} not measured in this ${r.mode} run. ` +
      'Restores are the child-process restores of part 2, medians (restoreInto: every block authenticated, hashed and linked; ' +
      'the state taken from a checkpoint where the tier holds one, the blocks after it replayed); ' +
      'their floor is COPY + decrypt of the same chain. Cold start and peak RSS are the cold starts of part 2 (ready medians; peak RSS the largest run). ' +
      "The save's two durable writes are the floors re-measured before each visit of part 1, each one's median. " +
      'The sealed chain is the loose sealed blocks and the sealed packs the chain reads (part 3).',
    '',
  ];
}

function coldStarts(r: Report): string[] {
  if (!r.coldStarts) return [];
  if (r.coldStarts.length === 0) return ['### Cold start', '', 'No cold starts in this run.', ''];
  return [
    '### Cold start',
    '',
    coldStartTable(r.coldStarts),
    '',
    'Each run starts the built `pawledger serve` on an empty data folder with only DATABASE_URL, against a database holding a chain ' +
      'loaded as a compacting ledger leaves it (packs, the newest 256 blocks loose, a checkpoint every 1,000 blocks). ' +
      'ready = process start to /healthz answering and a property read served; verified = to /status saying the background full replay agreed. ' +
      "peak RSS = the server's VmHWM after verified (restoring, serving and the full replay), the largest of the runs. " +
      'pg_dump = `pg_dump` of the same database to /dev/null just before each run. Medians of the runs.',
    '',
  ];
}

function rotations(r: Report): string[] {
  if (!r.rotations) return [];
  if (r.rotations.length === 0) return ['### Key rotation', '', 'No key rotation in this run.', ''];
  return ['### Key rotation', '', rotationTable(r.rotations), '', ROTATION_NOTE, ''];
}

/** renderReport turns a run's results into the Markdown report: machine, the parts, issue #7's and #14's targets. */
export function renderReport(r: Report): string {
  return [
    `# pawledger benchmark report (${r.mode} mode), started ${r.startedAt}`,
    '',
    ...r.about.map((l) => `- ${l}`),
    `- Load at start: ${r.loadStart}; at end: ${r.loadEnd}`,
    `- During the run: ${r.loadSamples}`,
    `- Total run time: ${r.totalSeconds.toFixed(0)} s`,
    '',
    ...perSave(r),
    ...restores(r),
    ...coldStarts(r),
    ...rotations(r),
    ...storage(r),
    '## 4. Side by side: the naive design, restic, and the floors',
    '',
    ...naive(r.naive),
    ...restic(r),
    ...floors(r.floors, r.crypto),
    ...targets(r),
    ...issue14(r),
  ].join('\n');
}
