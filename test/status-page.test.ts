import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/server/app.js';
import { STATUS_PAGE_REFRESH_SECONDS } from '../src/server/status-page.js';
import { Ledger } from '../src/service/ledger.js';

// Debian's chromium (CI installs it); PAWLEDGER_SCREENSHOT=1 also writes docs/status-page.png from the public page.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`status page tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

const TOKEN = 'status-page-admin-token-0123456789';
const house = (n: number) => ({ id: `house-${n}`, name: `House ${n}`, address: `${n} River Lane`, owner: 'alice' });

let tmp: string;
let ledger: Ledger;
let app: FastifyInstance;
let browser: Browser;
let base: string;

describe.skipIf(!hasChromium)('the status page in headless Chromium', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'pawledger-page-'));
    // The embedded database as a backup tier, so the page has a tier and backups to show.
    const config = loadConfig({ LEDGER_DB_DIR: join(tmp, 'db') });
    ledger = await Ledger.open({ config: { ...config, dataDir: join(tmp, 'blocks') } });
    app = buildServer(ledger, { adminToken: TOKEN, rateLimit: 0 });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await ledger?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function open(token?: string): Promise<{ page: Page; requests: string[] }> {
    const page = await browser.newPage();
    // The page must come whole from the server: no script, no CDN.
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.setJavaScriptEnabled(false);
    if (token) await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
    await page.setViewport({ width: 1000, height: 600 });
    const res = await page.goto(`${base}/`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toMatch(/^text\/html/);
    return { page, requests };
  }

  const text = (page: Page, selector: string) => page.$eval(selector, (e) => e.textContent?.trim() ?? '');
  const tierRows = (page: Page) =>
    page.$$eval('#tiers tr', (rows) => rows.slice(1).map((r) => [...r.cells].map((c) => c.textContent?.trim())));

  it('shows the ledger figures and each tier, with no script and nothing from elsewhere', async () => {
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
  });

  it('without the token shows no infrastructure: no folder, no backup id, no instance', async () => {
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
    expect(html).not.toContain(TOKEN);
    await page.close();
  });

  it('with the token lists the newest backups of each tier', async () => {
    const { page } = await open(TOKEN);
    const [newest] = await ledger.listBackups({ tier: 'db', limit: 1, allLedgers: false });
    const backups = await text(page, '#backups');
    expect(backups).toContain(newest!.id);
    expect(backups).toContain(newest!.name);
    expect(await page.content()).not.toContain(TOKEN);
    await page.close();
  });

  it('/docs renders the API from the package, with nothing fetched from elsewhere', async () => {
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
  }, 60_000);

  it('refreshes itself and shows a save made meanwhile', async () => {
    const { page } = await open();
    const before = Number(await text(page, '#height'));
    const reloaded = page.waitForNavigation({ timeout: (STATUS_PAGE_REFRESH_SECONDS + 20) * 1000 });
    await ledger.register(house(2));
    await reloaded;
    expect(Number(await text(page, '#height'))).toBe(before + 1);
    expect(await text(page, '#properties')).toBe('2');
    expect(await text(page, '#head')).toBe(ledger.status().headHash);
    if (process.env.PAWLEDGER_SCREENSHOT === '1')
      await page.screenshot({ path: new URL('../docs/status-page.png', import.meta.url).pathname, fullPage: true });
    await page.close();
  }, 60_000);
});
