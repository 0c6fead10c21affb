/**
 * The IPFS upload queue as a user of the Ledger sees it, against the Pinata stand-in (behind an HTTP front that
 * counts upload bytes and can play an outage): bursts coalesce into few manifests, saves never wait for IPFS, a
 * backlog uploads by itself once IPFS answers (also across a restart), each save uploads O(new blocks), and a wrong
 * JWT shows in status by variable name, never by value.
 */
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { Ledger, type TierStatus } from '../../src/service/ledger.js';
import { startHttpFront, type HttpFront } from '../support/http-front.js';
import { captureLogger, propertyInput, tempDir, TEST_KEY, waitFor } from '../support/pg.js';
import { startPinataStandin, type PinataStandin, type StandinPin } from '../support/standins/pinata.js';

const JWT = `eyJhbGciOiJIUzI1NiJ9.${randomBytes(24).toString('base64url')}.standin`;

let pinata: PinataStandin;
let front: HttpFront;
let root: string;
let cleanup: () => Promise<void>;
let n = 0;

beforeAll(async () => {
  pinata = await startPinataStandin({ jwt: JWT });
  front = await startHttpFront(pinata.url);
  ({ dir: root, cleanup } = await tempDir('ledger-queue'));
});
afterAll(async () => {
  await front?.close();
  await pinata?.close();
  await cleanup?.();
});

function config(dataDir: string, extra: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({
    LEDGER_DATA_DIR: dataDir,
    LEDGER_ENCRYPTION_KEY: TEST_KEY,
    LEDGER_DB: 'off',
    LEDGER_RETRY_MS: '100',
    IPFS_DEBOUNCE_MS: '20',
    IPFS_PROVIDER: 'pinata',
    PINATA_JWT: JWT,
    PINATA_API_URL: front.url,
    PINATA_GATEWAY_URL: pinata.gatewayUrl,
    LOG_FORMAT: 'json',
    ...extra,
  });
}

const freshDir = () => join(root, `data-${n++}`);

function ipfsOf(ledger: Ledger): TierStatus {
  return ledger.status().tiers.find((t) => t.name === 'ipfs')!;
}

/** level waits until status shows the IPFS tier ok at the ledger's head, and returns how long that took. */
function level(ledger: Ledger, ms = 15_000): Promise<number> {
  return waitFor(
    'the IPFS tier to be ok at the head',
    () => {
      const t = ipfsOf(ledger);
      return t.state === 'ok' && t.height === ledger.head.index;
    },
    ms,
  );
}

/** manifests lists the stand-in's manifest pins of a ledger, oldest first. */
function manifests(ledger: Ledger): StandinPin[] {
  return [...pinata.pins.values()]
    .filter(
      (p) =>
        p.keyvalues.kind === 'manifest' &&
        p.keyvalues.ledger === ledger.ledgerId.slice(0, 16) &&
        p.dateUnpinned === null,
    )
    .sort((a, b) => a.seq - b.seq);
}

function newestCidInStatus(ledger: Ledger): string | undefined {
  return ipfsOf(ledger).newestBackup;
}

const uploaded = () => front.bytesIn['/pinning/pinFileToIPFS'] ?? 0;

describe('the IPFS queue behind a Ledger (Pinata stand-in)', () => {
  it('turns a burst of 20 concurrent saves into far fewer manifests, the newest naming the ledger head', async () => {
    const { logger, lines } = captureLogger();
    const ledger = await Ledger.open({ config: config(freshDir()), logger });
    try {
      await level(ledger);
      const before = manifests(ledger).length;
      const flushesBefore = lines.filter((l) => l.includes('Ledger saved to local store')).length;
      // 20 clients saving at once, their requests spread over ~100 ms: many separate local flushes, each one a
      // notify() to the queue, so it is the queue (not the group commit) that has to coalesce them. Pinata answers
      // each call 150 ms late here (a real service's latency), so how many uploads the burst makes depends on the
      // queue's coalescing, not on how fast a loaded machine happens to run the stand-in.
      front.delayMs = 150;
      const results = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          await new Promise((r) => setTimeout(r, i * 5));
          return ledger.register(propertyInput(`burst-${i}`, i));
        }),
      );
      expect(new Set(results.map((r) => r.block.index)).size).toBe(20);
      await level(ledger).finally(() => {
        front.delayMs = 0;
      });
      const flushes = lines.filter((l) => l.includes('Ledger saved to local store')).length - flushesBefore;
      const made = manifests(ledger).length - before;
      console.log(`[burst] 20 concurrent saves in ${flushes} local flushes -> ${made} manifest(s)`);
      expect(made).toBeGreaterThanOrEqual(1);
      expect(made).toBeLessThanOrEqual(5);
      const newest = manifests(ledger).at(-1)!;
      expect(newest.keyvalues.height).toBe(String(ledger.head.index));
      expect(newest.keyvalues.head).toBe(ledger.head.hash.slice(0, 16));
      expect(ledger.head.index).toBe(20);
      expect(newestCidInStatus(ledger)).toBe(newest.cid);
    } finally {
      await ledger.close();
    }
  });

  it('keeps saving while IPFS is down, catches up alone once it answers, and the newest CID restores the same ledger', async () => {
    const ledger = await Ledger.open({ config: config(freshDir()) });
    let fresh: Ledger | undefined;
    try {
      await ledger.register(propertyInput('before-outage', 0));
      await level(ledger);
      front.down = true;
      pinata.gateway.mode = 'fail';
      const refusedBefore = front.refused;
      const slowest: number[] = [];
      for (let i = 0; i < 8; i++) {
        const t0 = performance.now();
        await ledger.register(propertyInput(`outage-${i}`, i));
        slowest.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 60));
      }
      // Saves are acknowledged at local-store speed: one failing IPFS upload with its five tries takes ~0.75 s here,
      // so saves that waited for IPFS would take several seconds together.
      expect(slowest.reduce((a, b) => a + b, 0)).toBeLessThan(2000);
      await waitFor(
        'IPFS to be tried and refused',
        () => front.refused > refusedBefore && ipfsOf(ledger).state === 'lagging',
      );
      expect(ipfsOf(ledger)).toMatchObject({ state: 'lagging' });
      expect(ipfsOf(ledger).height).toBeLessThan(ledger.head.index);

      front.down = false;
      pinata.gateway.mode = 'ok';
      const head = ledger.head;
      const ms = await level(ledger, 30_000);
      expect(ledger.head).toEqual(head); // caught up with no new save
      const newest = manifests(ledger).at(-1)!;
      expect(newest.keyvalues.height).toBe(String(head.index));
      expect(newestCidInStatus(ledger)).toBe(newest.cid);
      console.log(
        `[outage] 8 saves while down (slowest ${Math.round(Math.max(...slowest))} ms); level ${Math.round(ms)} ms after IPFS came back`,
      );

      fresh = await Ledger.open({ config: config(freshDir()) });
      const plan = await fresh.restoreFromIpfs(newest.cid);
      expect(plan).toMatchObject({ height: head.index, headHash: head.hash });
      expect(fresh.status()).toMatchObject({ ledgerId: ledger.ledgerId, height: head.index, headHash: head.hash });
      expect(fresh.properties()).toEqual(ledger.properties());
      expect(fresh.properties()).toHaveLength(9);
    } finally {
      front.down = false;
      pinata.gateway.mode = 'ok';
      await fresh?.close();
      await ledger.close();
    }
  }, 60_000);

  it('after a restart with uploads pending, uploads what IPFS lacks by itself', async () => {
    const dir = freshDir();
    const first = await Ledger.open({ config: config(dir) });
    let onIpfs: number;
    let head: Ledger['head'];
    try {
      await first.register(propertyInput('r-0', 0));
      await level(first);
      onIpfs = first.head.index;
      front.down = true;
      pinata.gateway.mode = 'fail';
      for (let i = 1; i <= 4; i++) await first.register(propertyInput(`r-${i}`, i));
      head = first.head;
      expect(ipfsOf(first).height).toBe(onIpfs);
    } finally {
      await first.close();
    }
    expect(Number(manifests(first).at(-1)!.keyvalues.height)).toBe(onIpfs);

    front.down = false;
    pinata.gateway.mode = 'ok';
    const { logger, lines } = captureLogger();
    const second = await Ledger.open({ config: config(dir), logger });
    try {
      expect(second.head).toEqual(head);
      await level(second);
      const newest = manifests(second).at(-1)!;
      expect(newest.keyvalues).toMatchObject({ height: String(head.index), head: head.hash.slice(0, 16) });
      const said = lines.map((l) => (JSON.parse(l) as { msg: string }).msg).join('\n');
      expect(said).toMatch(
        new RegExp(
          `Ledger backed up to IPFS: Backup ID ${newest.cid}, Name "[^"]+", Size \\d+ bytes, Blocks ${head.index + 1}`,
        ),
      );
      expect(await second.verifyBackup({ tier: 'ipfs', backupId: newest.cid })).toMatchObject({
        ok: true,
        headHash: head.hash,
        totalBlocks: head.index + 1,
      });
    } finally {
      await second.close();
    }
  }, 60_000);

  it('uploads O(new blocks) per save: 32 spaced saves after a 300-block chain cost far less than 32 whole chains', async () => {
    const dir = freshDir();
    const ledger = await Ledger.open({ config: config(dir) });
    try {
      await Promise.all(Array.from({ length: 299 }, (_, i) => ledger.register(propertyInput(`big-${i}`, i))));
      expect(ledger.head.index).toBe(299);
      await level(ledger, 30_000);
      let chainBytes = 0;
      for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
        if (e.isFile() && e.name.endsWith('.seg')) chainBytes += (await stat(join(e.parentPath, e.name))).size;
      }
      const start = uploaded();
      const requests = front.requests['/pinning/pinFileToIPFS'] ?? 0;
      for (let i = 0; i < 32; i++) {
        await ledger.register(propertyInput(`spaced-${i}`, i));
        await level(ledger);
      }
      const bytes = uploaded() - start;
      const naive = 32 * chainBytes;
      const uploads = (front.requests['/pinning/pinFileToIPFS'] ?? 0) - requests;
      console.log(
        `[O(new)] chain ${chainBytes} bytes (300 blocks); 32 spaced saves uploaded ${bytes} bytes in ${uploads} pins ` +
          `(${(bytes / 32).toFixed(0)} per save) vs naive ${naive} (${((100 * bytes) / naive).toFixed(2)}%)`,
      );
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThan(0.1 * naive);
      // Each save's upload is around one block and one manifest, not the chain: well under a third of the chain each.
      expect(bytes / 32).toBeLessThan(chainBytes / 3);
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('with a wrong PINATA_JWT (401), saves succeed and status names PINATA_JWT, never its value', async () => {
    const wrong = `eyJhbGciOiJIUzI1NiJ9.${randomBytes(24).toString('base64url')}.wrong`;
    const { logger, lines } = captureLogger();
    const ledger = await Ledger.open({
      config: config(freshDir(), { PINATA_JWT: wrong, PINATA_API_URL: pinata.url }),
      logger,
    });
    try {
      for (let i = 0; i < 3; i++) await ledger.register(propertyInput(`jwt-${i}`, i));
      expect(ledger.head.index).toBe(3);
      await waitFor('status to name PINATA_JWT', () => (ipfsOf(ledger).detail ?? '').includes('PINATA_JWT'));
      const ipfs = ipfsOf(ledger);
      expect(ipfs.state).toBe('lagging');
      expect(ipfs.detail).toMatch(/rejected the credentials in PINATA_JWT/);
      expect(manifests(ledger)).toHaveLength(0);
      // Let the queue retry a few times with its backoff: still nothing leaks.
      await new Promise((r) => setTimeout(r, 700));
      const log = lines.join('\n');
      expect(log).toMatch(/IPFS backup failed, saves continue.*PINATA_JWT/);
      for (const secret of [wrong, JWT, TEST_KEY]) {
        expect(JSON.stringify(ledger.status())).not.toContain(secret);
        expect(log).not.toContain(secret);
      }
    } finally {
      await ledger.close();
    }
    expect(lines.join('\n')).not.toContain(wrong);
  });
});
