import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Sealer } from '../crypto/seal.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { openPage, pack, unpack, type OpenedPage, type Packed } from './page-opener.js';

/** WORKER_URL is the built worker (dist/service/open-worker.js). Run from TypeScript sources it does not exist. */
const WORKER_URL = new URL('./open-worker.js', import.meta.url);
// Pages are regrouped to about this many blocks: a sizable job per message, bounded memory.
const PAGE_BLOCKS = 2000;
// Pages opened ahead of the consumer.
const AHEAD = 2;
// A worker pays for itself from about here (bench:restore-stages: at 10k blocks it cost 0.13 s, at 100k it saved 0.8 s).
const WORKER_MIN_BLOCKS = 30_000;

/** OpenJob is a page sent to the worker: its sealed blocks packed in one transferred buffer. */
export interface OpenJob {
  id: number;
  ledgerId: string;
  where: string;
  heights: number[];
  hashes: string[];
  sealed: Packed;
}

/** OpenReply is the worker's OpenedPage for job `id`, its bodies packed in one transferred buffer. */
export interface OpenReply extends Omit<OpenedPage, 'bodies'> {
  id: number;
  bodies: Packed;
}

/** OpenedPageOf pairs a page of stored blocks with what openPage found in it. */
export interface OpenedPageOf {
  page: StoredBlock[];
  opened: OpenedPage;
  /** onWorker is true when the page was opened on the worker thread. */
  onWorker: boolean;
}

/**
 * openedPages opens a chain's blocks (page-opener.ts: decrypt, authenticate, hash, stored Merkle root) a few pages
 * ahead of the consumer, which links and applies the pages before. For a long chain (`expectedBlocks`, or as many
 * blocks seen, at least WORKER_MIN_BLOCKS) a worker thread is started when the built worker exists, and pages go to
 * it as soon as it is online, so a restore uses the second core without waiting for the worker to start; until
 * then, or without a worker, or after it fails, pages are opened in this thread by the same code. The ledger (for the seals' context) is `ledgerId`, or block 0's hash.
 * Pages come out in order.
 */
export async function* openedPages(
  source: AsyncIterable<StoredBlock | StoredBlock[]> | Iterable<StoredBlock | StoredBlock[]>,
  sealer: Sealer,
  where: string,
  ledgerId: string | undefined,
  options: { workerUrl?: URL | null; expectedBlocks?: number } = {},
): AsyncGenerator<OpenedPageOf> {
  const url = options.workerUrl === undefined ? WORKER_URL : options.workerUrl;
  let worker: Worker | null = null;
  let online = false;
  let broken = false;
  let seq = 0;
  const waiting = new Map<number, { resolve: (r: OpenReply) => void; reject: (e: unknown) => void }>();
  const ahead: { page: StoredBlock[]; opened: Promise<{ opened: OpenedPage; onWorker: boolean }> }[] = [];
  let ledger = ledgerId;
  let seen = 0;
  const long = () => (options.expectedBlocks ?? seen) >= WORKER_MIN_BLOCKS;

  const startWorker = () => {
    if (worker || !url || !existsSync(fileURLToPath(url))) return;
    const w = new Worker(url, { workerData: sealer.forWorker() });
    worker = w;
    w.once('online', () => (online = true));
    w.on('message', (reply: OpenReply) => {
      waiting.get(reply.id)?.resolve(reply);
      waiting.delete(reply.id);
    });
    w.on('error', (err) => {
      broken = true;
      for (const p of waiting.values()) p.reject(err);
      waiting.clear();
    });
  };
  const open = (page: StoredBlock[]): Promise<{ opened: OpenedPage; onWorker: boolean }> => {
    // A chain whose first block is not block 0 fails in the replayer before any body is read; any id does here.
    ledger ??= page[0]!.height === 0 ? page[0]!.hash : '';
    const id = seq++;
    const here = () => ({ opened: openPage(sealer, ledger!, where, page), onWorker: false });
    if (!worker || !online || broken) return Promise.resolve(here());
    const job: OpenJob = {
      id,
      ledgerId: ledger,
      where,
      heights: page.map((b) => b.height),
      hashes: page.map((b) => b.hash),
      sealed: pack(page.map((b) => b.sealed)),
    };
    const reply = new Promise<OpenReply>((resolve, reject) => waiting.set(id, { resolve, reject }));
    worker.postMessage(job, [job.sealed.bytes.buffer as ArrayBuffer]);
    return reply.then(
      (r) => ({ opened: { bodies: unpack(r.bodies), roots: r.roots, fail: r.fail }, onWorker: true }),
      here,
    );
  };

  try {
    let pending: StoredBlock[] = [];
    for await (const item of source) {
      if (Array.isArray(item)) pending.push(...item);
      else pending.push(item);
      if (pending.length < PAGE_BLOCKS) continue;
      seen += pending.length;
      if (long()) startWorker();
      ahead.push({ page: pending, opened: open(pending) });
      pending = [];
      while (ahead.length > AHEAD) {
        const next = ahead.shift()!;
        yield { page: next.page, ...(await next.opened) };
      }
    }
    if (pending.length > 0) ahead.push({ page: pending, opened: open(pending) });
    while (ahead.length > 0) {
      const next = ahead.shift()!;
      yield { page: next.page, ...(await next.opened) };
    }
  } finally {
    void (worker as Worker | null)?.terminate();
  }
}
