/**
 * The verifier module in a real browser (Chromium through puppeteer-core): the page loads GET /proof-verifier.js as
 * an ES module and checks a proof and a consistency proof fetched from the same server, with Web Crypto. Skipped
 * where no Chromium is installed (CHROMIUM_PATH, else /usr/bin/chromium).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/server/app.js';
import { Ledger } from '../../src/service/ledger.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('the verifier in a browser', () => {
  it('loads /proof-verifier.js as a module and verifies a genuine proof, and refuses an edited one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pawledger-browser-'));
    const ledger = await Ledger.open({ config: { ...loadConfig({ LEDGER_DB: 'off' }), dataDir: dir } });
    const app = buildServer(ledger, { adminToken: 'browser-test-token' });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    try {
      await ledger.register({ id: 'p1', name: 'Casa', address: '1 Main St', owner: 'ann' });
      await ledger.transfer('p1', { from: 'ann', to: 'bo' });
      await ledger.proofsReady();
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      const page = await browser.newPage();
      await page.goto(`${url}/healthz`);
      // A string, so that the test runner leaves the page's own dynamic import alone.
      await page.evaluate(`(async () => {
        window.verifier = await import('/proof-verifier.js');
        window.proof = await (await fetch('/properties/p1/proof')).text();
      })()`);
      await ledger.register({ id: 'p2', name: 'Other', address: '2 Main St', owner: 'cy' });
      const verdicts = (await page.evaluate(`(async () => {
        const { verifyProofText } = window.verifier;
        const consistency = await (await fetch('/chain/consistency?from=2')).text();
        const newRoot = JSON.parse(consistency).to.root;
        return {
          genuine: await verifyProofText(window.proof),
          edited: await verifyProofText(window.proof.replace('"bo"', '"bz"')),
          newer: await verifyProofText(window.proof, { consistency, root: newRoot }),
          newerWithout: await verifyProofText(window.proof, { root: newRoot }),
        };
      })()`)) as Record<string, { ok: boolean }>;
      expect(verdicts.genuine).toMatchObject({ ok: true, propertyId: 'p1', blocks: 2 });
      expect(verdicts.edited).toMatchObject({ ok: false });
      expect(verdicts.newer).toMatchObject({ ok: true, head: { height: 3 } });
      expect(verdicts.newerWithout).toMatchObject({ ok: false });
    } finally {
      await browser.close();
      await app.close();
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
