/**
 * The status page's HTML, rendered on the server from a status (public or full) with no script, no build step and
 * nothing fetched from elsewhere: readable without JavaScript, and refreshing itself by a meta refresh. Every value is
 * escaped. What it shows is what it is given: the caller decides, by the token, which status and backups those are.
 * The proof checker is a page of its own (renderProofCheckPage, GET /proof-check) that never refreshes, so a proof
 * being pasted is not wiped by the status page's reload.
 */
import type { AssuranceStatus } from '../service/assurance.js';

/** StatusView is what the page shows. */
export interface StatusView {
  /** status is GET /status's answer for this request: the public view, or the full one with the token. */
  status: {
    ledgerId: string;
    height: number;
    headHash: string;
    totalBlocks: number;
    totalProperties: number;
    keyId: string;
    tiers: { name: string; state: string; height: number; role?: string; newestBackup?: string; detail?: string }[];
    fork: string | null;
    writer: { mode: string; role: string; holder?: string | null };
    verification: string | { state: string };
    degraded: boolean | { reason: string } | null;
    /**
     * assurance is each tier's freshness and newest restore drill: in the full status only (GET /status leaves it out
     * without the token, and so does the page).
     */
    assurance?: AssuranceStatus;
  };
  /** backups are each tier's newest backups (with the token), or null when the page may not show them. */
  backups: { tier: string; error?: string; rows: BackupRow[] }[] | null;
  /** refreshSeconds is how often the page reloads itself. */
  refreshSeconds: number;
  /** now is when the page was made. */
  now: Date;
}

/** BackupRow is one backup as the page lists it. */
export interface BackupRow {
  id: string;
  name: string;
  kind: string;
  createdAt: Date | string;
  height: number;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** escapeHtml makes any text safe inside an element or a quoted attribute. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const cell = (value: unknown, attrs = '') => `<td${attrs}>${escapeHtml(value)}</td>`;
const row = (cells: string[]) => `<tr>${cells.join('')}</tr>`;
const head = (names: string[]) => `<tr>${names.map((n) => `<th scope="col">${escapeHtml(n)}</th>`).join('')}</tr>`;
const iso = (d: Date | string) => (d instanceof Date ? d.toISOString() : d).replace('T', ' ').slice(0, 19);

function figure(label: string, value: unknown, id: string): string {
  return `<div class="figure"><dt>${escapeHtml(label)}</dt><dd id="${id}">${escapeHtml(value)}</dd></div>`;
}

function verificationOf(s: StatusView['status']): string {
  const v = typeof s.verification === 'string' ? s.verification : s.verification.state;
  const degraded = s.degraded === true || (typeof s.degraded === 'object' && s.degraded !== null);
  return degraded ? `DEGRADED (writes refused): ${v}` : v;
}

function tiersTable(s: StatusView['status'], full: boolean): string {
  const columns = ['tier', 'state', 'height', 'behind the head', ...(full ? ['role', 'newest backup', 'detail'] : [])];
  const rows = s.tiers.map((t) => {
    const lag = t.state === 'off' ? '' : Math.max(0, s.height - t.height);
    return row([
      cell(t.name),
      cell(t.state, ` class="state-${escapeHtml(t.state)}"`),
      cell(t.state === 'off' ? '' : t.height),
      cell(lag === '' ? '' : `${lag} blocks`),
      ...(full ? [cell(t.role ?? ''), cell(t.newestBackup ?? ''), cell(t.detail ?? '')] : []),
    ]);
  });
  return `<table id="tiers">${head(columns)}${rows.join('')}</table>`;
}

function backupsSection(backups: StatusView['backups']): string {
  if (backups === null)
    return '<p class="note">Backups are listed with the admin token (<code>Authorization: Bearer</code>).</p>';
  if (backups.length === 0) return '<p class="note">No backup tier is on: only the local store holds the chain.</p>';
  return backups
    .map((b) => {
      const body = b.error
        ? `<p class="note">${escapeHtml(b.error)}</p>`
        : b.rows.length === 0
          ? '<p class="note">none yet</p>'
          : `<table>${head(['id', 'name', 'kind', 'created (UTC)', 'height'])}${b.rows
              .map((r) => row([cell(r.id), cell(r.name), cell(r.kind), cell(iso(r.createdAt)), cell(r.height)]))
              .join('')}</table>`;
      return `<h3>${escapeHtml(b.tier)}</h3>${body}`;
    })
    .join('');
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

function every(ms: number): string {
  if (ms <= 0) return 'off';
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
  ];
  const [size, unit] = units.find(([u]) => ms % u === 0) ?? [1000, 's'];
  return `every ${ms / size} ${unit}`;
}

/**
 * assuranceSection shows, per backup tier, its freshness (blocks behind its newest backup, how long it has lacked
 * them, stale past the limits, failing since) and its newest restore drill; with no assurance (the public view), a
 * note that the admin token shows them.
 */
function assuranceSection(a: AssuranceStatus | undefined): string {
  const title = '<h2>Freshness and restore drills</h2>';
  if (!a)
    return `<section id="assurance">${title}<p class="note">Each tier's freshness and restore drills are shown with the admin token.</p></section>`;
  if (a.tiers.length === 0)
    return `<section id="assurance">${title}<p class="note">No backup tier is on: there is nothing to drill.</p></section>`;
  const limit = (n: number, unit: string) => (n > 0 ? `${n} ${unit}` : 'no limit');
  const fresh = a.tiers.map((t) =>
    row([
      cell(t.tier),
      cell(`${t.lagBlocks} blocks`),
      cell(`${t.lagSeconds} s`),
      t.stale ? '<td class="stale">STALE</td>' : cell('fresh'),
      cell(t.lastBackupAt ? iso(t.lastBackupAt) : ''),
      cell(t.failingSince ? iso(t.failingSince) : ''),
    ]),
  );
  const drills = a.tiers.map((t) => {
    const d = t.lastDrill;
    if (!d) return row([cell(t.tier), cell('none yet', ' colspan="5" class="note"')]);
    return row([
      cell(t.tier),
      cell(iso(d.startedAt)),
      cell(d.outcome, ` class="drill-${escapeHtml(d.outcome)}"`),
      cell(d.height ?? ''),
      cell(seconds(d.durationMs)),
      cell(d.outcome === 'ok' ? '' : (d.reason ?? '')),
    ]);
  });
  return `<section id="assurance">${title}
<p class="note">Stale past ${escapeHtml(limit(a.maxLagBlocks, 'blocks'))} or ${escapeHtml(limit(a.maxLagSeconds, 's'))} behind; scheduled drills ${escapeHtml(every(a.drillIntervalMs))}.</p>
<table id="freshness">${head(['tier', 'behind its newest backup', 'lacking them for', 'stale', 'last backup (UTC)', 'failing since (UTC)'])}${fresh.join('')}</table>
<h3>Newest restore drill of each tier</h3>
<table id="drills">${head(['tier', 'started (UTC)', 'outcome', 'height', 'duration', 'reason'])}${drills.join('')}</table>
</section>`;
}

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.25rem;color:#1d232a;
background:#fafafa}h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin-top:1.6rem}h3{font-size:1rem}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.6rem;margin:0}
.figure{background:#fff;border:1px solid #dde1e5;border-radius:6px;padding:.5rem .75rem}
dt{font-size:.8rem;color:#5a6470}dd{margin:0;font-size:1.15rem;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.3rem .6rem;
border-bottom:1px solid #e4e7ea;overflow-wrap:anywhere}th{font-size:.8rem;color:#5a6470}
.state-ok{color:#17702e;font-weight:600}.state-lagging{color:#9a6500;font-weight:600}
.state-down{color:#b3261e;font-weight:600}.state-off{color:#8a939c}.note,footer{color:#5a6470;font-size:.85rem}
.stale,.drill-failed{color:#b3261e;font-weight:600}.drill-ok{color:#17702e;font-weight:600}
.alert{background:#fdecea;border:1px solid #f3b7b2;padding:.5rem .75rem;border-radius:6px}code{font-size:.85em}`;

/** renderStatusPage returns the whole page: the ledger's figures, its tiers, backups and drills where given. */
export function renderStatusPage(view: StatusView): string {
  const s = view.status;
  const full = view.backups !== null;
  const alerts = [
    ...(s.fork ? [`Startup resolved a fork: ${s.fork}`] : []),
    ...(s.degraded ? ['A full replay contradicted a checkpoint: writes are refused until an operator acts.'] : []),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="${view.refreshSeconds}">
<title>pawledger: height ${s.height}</title><style>${STYLE}</style></head>
<body><main>
<h1>pawledger <span class="note">ledger ${escapeHtml(s.ledgerId)}</span></h1>
${alerts.map((a) => `<p class="alert" role="alert">${escapeHtml(a)}</p>`).join('')}
<dl id="figures">
${figure('height', s.height, 'height')}
${figure('properties', s.totalProperties, 'properties')}
${figure('blocks', s.totalBlocks, 'blocks')}
${figure('writer', `${s.writer.role} (${s.writer.mode})`, 'writer')}
${figure('verification', verificationOf(s), 'verification')}
${figure('key id', s.keyId, 'key-id')}
</dl>
<p>head <code id="head">${escapeHtml(s.headHash)}</code></p>
<h2>Tiers</h2>
${tiersTable(s, full)}
<h2>Recent backups</h2>
<div id="backups">${backupsSection(view.backups)}</div>
${assuranceSection(s.assurance)}
</main>
<footer><p>Made ${escapeHtml(iso(view.now))} UTC; this page reloads every ${view.refreshSeconds} s.
The same as JSON: <a href="/status">/status</a>. The API: <a href="/docs">/docs</a>.
Check a property's proof in this browser: <a href="/proof-check" id="proof-check-link">/proof-check</a>.</p></footer>
</body></html>
`;
}

/** ProofCheckView is what the proof checker page shows besides its form: the ledger's root at its head now, if any. */
export interface ProofCheckView {
  ledgerId: string;
  height: number;
  /** root is the accumulator's root at the head (public: it commits to the chain), or null while proofs are not ready. */
  root: string | null;
}

/**
 * renderProofCheckPage returns the proof checker: a form where a person pastes a proof (and optionally a root they
 * trust), checked in the browser by /proof-check.js with the dependency-free /proof-verifier.js; nothing is sent to
 * the server. It never reloads itself. Without JavaScript the form stays disabled and the page says how to check a
 * proof offline instead.
 */
export function renderProofCheckPage(view: ProofCheckView): string {
  const current =
    view.root === null
      ? '<p class="note">The ledger cannot make proofs right now, so it names no root.</p>'
      : `<p class="note">This ledger's root at its head now (height <span id="current-height">${escapeHtml(view.height)}</span>): <code id="current-root">${escapeHtml(view.root)}</code>. A root you trust should come from elsewhere: a backup record, an IPFS manifest, or someone who checked it.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>pawledger: check a proof</title><style>${STYLE}
textarea,input{width:100%;box-sizing:border-box;font:13px/1.4 ui-monospace,monospace;padding:.4rem}
label{display:block;margin:.8rem 0 .3rem;font-weight:600}button{margin-top:.8rem;font:inherit;padding:.35rem 1rem}
fieldset{border:0;padding:0;margin:0}#verdict{display:block;margin-top:1rem;padding:.5rem .75rem;border-radius:6px}
#verdict.valid{background:#e7f5ea;border:1px solid #a9d8b4;color:#17702e;font-weight:600}
#verdict.invalid{background:#fdecea;border:1px solid #f3b7b2;color:#b3261e;font-weight:600}</style>
<script type="module" src="/proof-check.js"></script></head>
<body><main>
<h1>Check a property's proof <span class="note">ledger ${escapeHtml(view.ledgerId)}</span></h1>
<p>Paste a proof as <code>GET /properties/ID/proof</code> or <code>pawledger proof ID</code> gives it. It is checked in
this browser by <a href="/proof-verifier.js">/proof-verifier.js</a>: nothing is sent to the server, and no key is
needed. The proof must be byte for byte as it was made (blank space around it is ignored).</p>
<noscript><p class="alert">The check runs in the browser and needs JavaScript. Without it, check a proof file offline:
<code>pawledger proof verify FILE [--root HEX]</code>.</p></noscript>
${current}
<form id="proof-form" autocomplete="off"><fieldset id="proof-fields" disabled>
<label for="proof">Proof (JSON)</label>
<textarea id="proof" name="proof" rows="14" spellcheck="false" required></textarea>
<label for="root">Trusted root (optional, 64 hex digits)</label>
<input id="root" name="root" spellcheck="false" pattern="[0-9a-fA-F]{64}" title="64 hex digits">
<button type="submit" id="check">Check</button>
</fieldset></form>
<output id="verdict" for="proof root" aria-live="polite"></output>
</main>
<footer><p>This page does not reload itself. The ledger's status: <a href="/">/</a>.</p></footer>
</body></html>
`;
}
