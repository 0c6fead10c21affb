import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Sealer } from '../crypto/seal.js';
import type { StoredBlock } from '../store/stored-block.js';
import { openPage, packPage, type OpenedPage } from './page-opener.js';

/** WORKER_URL is the built worker (dist/service/open-worker.js). Run from TypeScript sources it does not exist. */
const WORKER_URL = new URL('./open-worker.js', import.meta.url);
// Pages are regrouped to about this many blocks: a sizable job per message, bounded memory.
const PAGE_BLOCKS = 2000;
// A chain shorter than one full page is opened in this thread: a worker's start-up would cost more than it saves.
const MIN_WORKER_BLOCKS = PAGE_BLOCKS;
// Pages opened ahead of the consumer.
const AHEAD = 2;

/** OpenedPageOf pairs a page of stored blocks with what openPage found in it. */
export interface OpenedPageOf {
  page: StoredBlock[];
  opened: OpenedPage;
  /** onWorker is true when the page was opened on the worker thread. */
  onWorker: boolean;
}

/**
 * openedPages opens a chain's blocks ahead of the consumer (page-opener.ts: decrypt, authenticate, hash, stored
 * Merkle root) while the consumer links and applies the pages before: on a worker thread once the chain is long
 * enough and the built worker exists, so a restore uses the second core; else in this thread, the same code. A
 * worker that fails is dropped and its pages opened here. The ledger (for the seal's context) is `ledgerId`, or
 * block 0's hash. Pages come out in order.
 */
export async function* openedPages(
  source: AsyncIterable<StoredBlock | StoredBlock[]> | Iterable<StoredBlock | StoredBlock[]>,
  sealer: Sealer,
  where: string,
  ledgerId: string | undefined,
  options: { workerUrl?: URL | null } = {},
): AsyncGenerator<OpenedPageOf> {
  const url = options.workerUrl === undefined ? WORKER_URL : options.workerUrl;
  let worker: Worker | null = null;
  let broken = false;
  let seq = 0;
  const waiting = new Map<number, { resolve: (p: OpenedPage) => void; reject: (e: unknown) => void }>();
  const ahead: { page: StoredBlock[]; opened: Promise<{ opened: OpenedPage; onWorker: boolean }> }[] = [];
  let ledger = ledgerId;

  const startWorker = () => {
    if (worker || broken || !url || !existsSync(fileURLToPath(url))) return;
    worker = new Worker(url, { workerData: sealer.forWorker() });
    worker.on('message', (opened: OpenedPage) => {
      waiting.get(opened.id)?.resolve(opened);
      waiting.delete(opened.id);
    });
    worker.on('error', (err) => {
      broken = true;
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
    });
  };
  const open = (page: StoredBlock[]): Promise<{ opened: OpenedPage; onWorker: boolean }> => {
    // A chain whose first block is not block 0 fails in the replayer before any body is read; any id does here.
    ledger ??= page[0]!.height === 0 ? page[0]!.hash : '';
    const id = seq++;
    // Opened here: the same code, in this thread (a packed job's buffer is gone once sent to the worker).
    const here = () => ({ opened: openPage(sealer, packPage(id, ledger!, where, page)), onWorker: false });
    if (!worker || broken) return Promise.resolve(here());
    const job = packPage(id, ledger, where, page);
    const opened = new Promise<OpenedPage>((resolve, reject) => waiting.set(id, { resolve, reject }));
    worker.postMessage(job, [job.sealed.buffer as ArrayBuffer]);
    return opened.then((o) => ({ opened: o, onWorker: true }), here);
  };
  const submit = (page: StoredBlock[]) => {
    if (seq === 0 && page.length >= MIN_WORKER_BLOCKS) startWorker();
    ahead.push({ page, opened: open(page) });
  };

  try {
    let pending: StoredBlock[] = [];
    for await (const item of source) {
      if (Array.isArray(item)) pending.push(...item);
      else pending.push(item);
      if (pending.length < PAGE_BLOCKS) continue;
      submit(pending);
      pending = [];
      while (ahead.length > AHEAD) {
        const next = ahead.shift()!;
        yield { page: next.page, ...(await next.opened) };
      }
    }
    if (pending.length > 0) submit(pending);
    while (ahead.length > 0) {
      const next = ahead.shift()!;
      yield { page: next.page, ...(await next.opened) };
    }
  } finally {
    await (worker as Worker | null)?.terminate();
  }
}
