/**
 * The status page's HTML, rendered on the server from a status (public or full) with no script, no build step and
 * nothing fetched from elsewhere: readable without JavaScript, and refreshing itself by a meta refresh. Every value is
 * escaped. What it shows is what it is given: the caller decides, by the token, which status and backups those are.
 */

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
    /** drills are the restore drills' verdicts, where the service reports them (each a flat record). */
    drills?: Record<string, unknown>[];
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

// Drills come from another part of the service; the page lists whatever flat fields each verdict has.
function drillsSection(drills: Record<string, unknown>[] | undefined): string {
  if (!Array.isArray(drills)) return '';
  const columns = [...new Set(drills.flatMap((d) => Object.keys(d)))];
  const text = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : v);
  const rows = drills.map((d) => row(columns.map((c) => cell(text(d[c])))));
  return `<section id="drills"><h2>Restore drills</h2>${
    drills.length === 0 ? '<p class="note">none yet</p>' : `<table>${head(columns)}${rows.join('')}</table>`
  }</section>`;
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
${drillsSection(s.drills)}
</main>
<footer><p>Made ${escapeHtml(iso(view.now))} UTC; this page reloads every ${view.refreshSeconds} s.
The same as JSON: <a href="/status">/status</a>. The API: <a href="/docs">/docs</a>.</p></footer>
</body></html>
`;
}
