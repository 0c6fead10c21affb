import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../src/server/app.js';
import { STATUS_PAGE_REFRESH_SECONDS } from '../src/server/status-page.js';
import { Ledger } from '../src/service/ledger.js';
import { createTempDatabase, ledgerConfig, type TempDatabase } from './support/pg.js';

// Debian's chromium (CI installs it); PAWLEDGER_SCREENSHOT=1 also writes docs/status-page.png from the public page.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`status page tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

// A loaded machine can take long to start Chromium or answer a page: every hook and test says how long it may take.
const HOOK_MS = 180_000;
const TEST_MS = 90_000;

const TOKEN = 'status-page-admin-token-0123456789';
const house = (n: number) => ({ id: `house-${n}`, name: `House ${n}`, address: `${n} River Lane`, owner: 'alice' });

let tmp: string;
let db: TempDatabase | undefined;
let ledger: Ledger;
let app: FastifyInstance;
let browser: Browser;
let base: string;

describe.skipIf(!hasChromium)('the status page in headless Chromium', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'pawledger-page-'));
    // The real PostgreSQL (127.0.0.1:5432) as a backup tier, so the page has a tier, backups and drills to show; the
    // embedded one took half a minute to start on a loaded machine.
    db = await createTempDatabase();
    const config = ledgerConfig(join(tmp, 'blocks'), db.url, { PG_TIMEOUT_MS: '15000' });
    ledger = await Ledger.open({ config });
    app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
      protocolTimeout: HOOK_MS,
    });
  }, HOOK_MS);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await ledger?.close();
    await db?.drop();
    await rm(tmp, { recursive: true, force: true });
  }, HOOK_MS);

  async function open(token?: string, path = '/', js = false): Promise<{ page: Page; requests: string[] }> {
    const page = await browser.newPage();
    page.setDefaultTimeout(TEST_MS / 2);
    // The page must come whole from the server: no CDN, and on / no script.
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.setJavaScriptEnabled(js);
    if (token) await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
    await page.setViewport({ width: 1000, height: 600 });
    const res = await page.goto(`${base}${path}`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toMatch(/^text\/html/);
    return { page, requests };
  }

  const text = (page: Page, selector: string) => page.$eval(selector, (e) => e.textContent?.trim() ?? '');
  const tierRows = (page: Page) =>
    page.$$eval('#tiers tr', (rows) => rows.slice(1).map((r) => [...r.cells].map((c) => c.textContent?.trim())));

  it(
    'shows the ledger figures and each tier, with no script and nothing from elsewhere',
    async () => {
      await ledger.register(house(1));
      const { page, requests } = await open();
      const s = ledger.status();
      expect(await text(page, '#height')).toBe(String(s.height));
      expect(await text(page, '#properties')).toBe('1');
      expect(await text(page, '#blocks')).toBe(String(s.totalBlocks));
      expect(await text(page, '#head')).toBe(s.headHash);
      expect(await text(page, '#writer')).toBe(`${s.writer.role} (${s.writer.mode})`);
      const tiers = await tierRows(page);
      expect(tiers).toContainEqual(['db', 'ok', String(s.height), '0 blocks']);
      expect(tiers).toContainEqual(['local', 'ok', String(s.height), '0 blocks']);
      expect(await page.$$eval('script', (e) => e.length)).toBe(0);
      expect(requests.every((u) => u.startsWith(base))).toBe(true);
      await page.close();
    },
    TEST_MS,
  );

  it(
    'without the token shows no infrastructure: no folder, no backup id, no instance',
    async () => {
      const { page } = await open();
      const html = await page.content();
      const s = ledger.status();
      expect(html).not.toContain(tmp);
      expect(html).not.toContain(s.writer.instance);
      // A database backup id is a small number: look for the column rather than the value.
      expect(await page.$$eval('#tiers th', (h) => h.map((c) => c.textContent))).toEqual([
        'tier',
        'state',
        'height',
        'behind the head',
      ]);
      for (const t of s.tiers) if (t.detail) expect(html).not.toContain(t.detail);
      expect(await text(page, '#backups')).toMatch(/admin token/);
      expect(await text(page, '#assurance')).toMatch(/shown with the admin token/);
      expect(await page.$('#drills')).toBeNull();
      expect(await page.$('#freshness')).toBeNull();
      expect(html).not.toContain(TOKEN);
      await page.close();
    },
    TEST_MS,
  );

  it(
    'with the token lists the newest backups of each tier',
    async () => {
      const { page } = await open(TOKEN);
      const [newest] = await ledger.listBackups({ tier: 'db', limit: 1, allLedgers: false });
      const backups = await text(page, '#backups');
      expect(backups).toContain(newest!.id);
      expect(backups).toContain(newest!.name);
      expect(await page.content()).not.toContain(TOKEN);
      await page.close();
    },
    TEST_MS,
  );

  const rows = (page: Page, table: string) =>
    page.$$eval(`${table} tr`, (r) => r.slice(1).map((x) => [...x.cells].map((c) => c.textContent?.trim())));

  it(
    "with the token shows a drill's outcome after POST /admin/drill, and each tier's freshness",
    async () => {
      const res = await fetch(`${base}/admin/drill`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tier: 'db' }),
      });
      expect(res.status).toBe(200);
      const report = (await res.json()) as { ok: boolean; drills: { outcome: string; height: number | null }[] };
      expect(report.ok).toBe(true);
      const { page } = await open(TOKEN);
      const [drill] = await rows(page, '#drills');
      expect(drill?.slice(0, 4)).toEqual(['db', expect.any(String), 'ok', String(report.drills[0]!.height)]);
      expect(drill?.[4]).toMatch(/^\d+(\.\d)? s$/);
      const [fresh] = await rows(page, '#freshness');
      const a = ledger.status().assurance.tiers.find((t) => t.tier === 'db')!;
      expect(fresh?.slice(0, 4)).toEqual(['db', `${a.lagBlocks} blocks`, expect.stringMatching(/^\d+ s$/), 'fresh']);
      // Without the token, the same page shows none of it.
      const { page: open2 } = await open();
      expect(await open2.$('#drills')).toBeNull();
      await Promise.all([page.close(), open2.close()]);
    },
    TEST_MS,
  );

  it(
    '/ links the proof checker, which says a genuine proof is valid and an edited one invalid',
    async () => {
      await ledger.register({ id: 'deed-1', name: 'Mill', address: '3 Weir Road', owner: 'carol' });
      await ledger.transfer('deed-1', { from: 'carol', to: 'dave' });
      await ledger.proofsReady();
      const proof = await (await fetch(`${base}/properties/deed-1/proof`)).text();
      const { root } = ledger.status().proofs;
      const { page: status } = await open();
      expect(await status.$eval('#proof-check-link', (a) => a.getAttribute('href'))).toBe('/proof-check');
      await status.close();

      const { page, requests } = await open(undefined, '/proof-check', true);
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.waitForSelector('html[data-ready="true"]');
      expect(await page.$eval('meta[http-equiv="refresh"]', () => true).catch(() => false)).toBe(false);
      const check = async (text: string, trusted = ''): Promise<string> => {
        await page.$eval('#verdict', (o) => {
          o.textContent = '';
          o.removeAttribute('data-ok');
        });
        await page.$eval('textarea#proof', (t, v) => void (t.value = v), text);
        await page.$eval('input#root', (t, v) => void (t.value = v), trusted);
        await page.click('#check');
        await page.waitForSelector('#verdict[data-ok]');
        return page.$eval('#verdict', (o) => o.textContent ?? '');
      };
      expect(await check(proof)).toMatch(/^VALID: property deed-1, 2 transactions in 2 blocks/);
      expect(await check(proof, root!)).toMatch(/^VALID: .*\(the root you trust\)$/);
      // One changed byte: a letter of the new owner's name.
      const edited = proof.replace('"dave"', '"davf"');
      expect(edited).not.toBe(proof);
      expect(await check(edited)).toMatch(/^INVALID: /);
      expect(await check(proof, 'ab'.repeat(32))).toMatch(/^INVALID: the proof leads to root/);
      // No script refused by the CSP, no error thrown (a favicon's 404 aside).
      expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
      const paths = requests.map((u) => new URL(u).pathname).filter((p) => p !== '/favicon.ico');
      expect(paths.sort()).toEqual(['/proof-check', '/proof-check.js', '/proof-verifier.js']);
      expect(requests.every((u) => u.startsWith(base))).toBe(true);
      await page.close();

      // Without JavaScript the page still reads, its form disabled and the offline way named.
      const { page: plain } = await open(undefined, '/proof-check');
      expect(await plain.$eval('fieldset#proof-fields', (f) => f.disabled)).toBe(true);
      expect(await text(plain, 'noscript')).toMatch(/pawledger proof verify FILE/);
      await plain.close();
    },
    TEST_MS,
  );

  it(
    '/docs renders the API from the package, with nothing fetched from elsewhere',
    async () => {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`${base}/docs`, { waitUntil: 'load' });
      await page.waitForSelector('.opblock', { timeout: 20_000 });
      const operations = await page.$$eval('.opblock-summary-path', (e) => e.map((x) => x.textContent?.trim()));
      expect(operations).toContain('/properties/{id}');
      expect(operations).toContain('/admin/restore');
      expect(requests.length).toBeGreaterThan(2);
      // data: URLs are inline (the UI's logo), not fetched.
      expect(requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:'))).toEqual([]);
      await page.close();
    },
    TEST_MS,
  );

  it(
    'refreshes itself and shows a save made meanwhile',
    async () => {
      const { page } = await open();
      const before = Number(await text(page, '#height'));
      const reloaded = page.waitForNavigation({ timeout: (STATUS_PAGE_REFRESH_SECONDS + 20) * 1000 });
      await ledger.register(house(2));
      await reloaded;
      expect(Number(await text(page, '#height'))).toBe(before + 1);
      expect(await text(page, '#properties')).toBe(String(ledger.status().totalProperties));
      expect(await text(page, '#head')).toBe(ledger.status().headHash);
      if (process.env.PAWLEDGER_SCREENSHOT === '1')
        await page.screenshot({ path: new URL('../docs/status-page.png', import.meta.url).pathname, fullPage: true });
      await page.close();
    },
    TEST_MS,
  );
});
