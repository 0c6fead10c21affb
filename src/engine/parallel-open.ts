import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { pageHashes, pageRange, type ChainPage } from '../crypto/packs.js';
import type { Sealer } from '../crypto/seal.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import { openPage, pack, unpack, type OpenedPage, type OpenMode, type Packed } from './page-opener.js';

/** WORKER_URL is the built worker (dist/engine/open-worker.js). Run from TypeScript sources it does not exist. */
const WORKER_URL = new URL('./open-worker.js', import.meta.url);
// Runs of loose blocks are regrouped to about this many: a sizable job per message, bounded memory.
const PAGE_BLOCKS = 2000;
// Pages opened ahead of the consumer.
const AHEAD = 3;
// A worker pays for itself from about here (bench:restore-stages: at 10k blocks it cost 0.13 s, at 100k it saved 0.8 s).
const WORKER_MIN_BLOCKS = 30_000;

/** OpenJob is a page sent to the worker, its sealed bytes in one transferred buffer. */
export interface OpenJob {
  id: number;
  ledgerId: string;
  where: string;
  mode: OpenMode;
  page:
    | { kind: 'blocks'; heights: number[]; hashes: string[]; sealed: Packed }
    | { kind: 'pack'; from: number; to: number; packFrom: number; hashes: string[]; sealed: Uint8Array };
}

/** OpenReply is the worker's OpenedPage for job `id` (without the hashes, which the page has), bodies packed. */
export interface OpenReply extends Omit<OpenedPage, 'bodies' | 'hashes'> {
  id: number;
  bodies: Packed;
}

/** toJob is the worker's form of a page. */
export function toJob(id: number, ledgerId: string, where: string, mode: OpenMode, page: ChainPage): OpenJob {
  if ('blocks' in page) {
    const { blocks } = page;
    return {
      id,
      ledgerId,
      where,
      mode,
      page: {
        kind: 'blocks',
        heights: blocks.map((b) => b.height),
        hashes: blocks.map((b) => b.hash),
        sealed: pack(blocks.map((b) => b.sealed)),
      },
    };
  }
  const p = page.pack;
  const sealed = new Uint8Array(p.sealed.length);
  sealed.set(p.sealed);
  return {
    id,
    ledgerId,
    where,
    mode,
    page: { kind: 'pack', from: page.from, to: page.to, packFrom: p.from, hashes: p.hashes, sealed },
  };
}

/** fromJob is the page a job carries. */
export function fromJob(job: OpenJob): ChainPage {
  const p = job.page;
  if (p.kind === 'blocks') {
    const sealed = unpack(p.sealed);
    return { blocks: sealed.map((s, i) => ({ height: p.heights[i]!, hash: p.hashes[i]!, sealed: s })) };
  }
  const pk = {
    from: p.packFrom,
    to: p.packFrom + p.hashes.length - 1,
    hashes: p.hashes,
    sealed: Buffer.from(p.sealed),
  };
  return { pack: pk, from: p.from, to: p.to };
}

/** OpenedPageOf pairs a page with what openPage found in it. */
export interface OpenedPageOf {
  page: ChainPage;
  opened: OpenedPage;
  /** onWorker is true when the page was opened on the worker thread. */
  onWorker: boolean;
}

/**
 * openedPages opens a chain's pages (page-opener.ts) a few pages ahead of the consumer, which links and applies the
 * pages before, each in the mode `modeFor` says. Runs of loose blocks are regrouped into pages of about PAGE_BLOCKS;
 * packs pass as they are. For a long chain (`expectedBlocks`, or as many blocks seen, at least WORKER_MIN_BLOCKS) a
 * worker thread is started when the built worker exists, and pages go to it as soon as it is online, so a restore
 * uses the second core without waiting for the worker to start; until then, or without a worker, or after it fails,
 * pages are opened in this thread by the same code. The ledger (for the seals' context) is `ledgerId`, or block 0's
 * hash. Pages come out in order.
 */
export async function* openedPages(
  source: AsyncIterable<ChainPage> | Iterable<ChainPage>,
  sealer: Sealer,
  where: string,
  ledgerId: string | undefined,
  options: {
    workerUrl?: URL | null;
    expectedBlocks?: number;
    modeFor?: (page: ChainPage) => OpenMode;
    /** pageBlocks regroups loose blocks into pages of this many (a drill keeps them small). @default 2000 */
    pageBlocks?: number;
  } = {},
): AsyncGenerator<OpenedPageOf> {
  const url = options.workerUrl === undefined ? WORKER_URL : options.workerUrl;
  const modeFor = options.modeFor ?? (() => 'full');
  const pageBlocks = options.pageBlocks ?? PAGE_BLOCKS;
  let worker: Worker | null = null;
  let online = false;
  let broken = false;
  let seq = 0;
  const waiting = new Map<number, { resolve: (r: OpenReply) => void; reject: (e: unknown) => void }>();
  const ahead: { page: ChainPage; opened: Promise<{ opened: OpenedPage; onWorker: boolean }> }[] = [];
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
  const open = (page: ChainPage): Promise<{ opened: OpenedPage; onWorker: boolean }> => {
    // A chain whose first block is not block 0 fails in the consumer before any body is read; any id does here.
    ledger ??= pageRange(page).from === 0 ? pageHashes(page)[0]! : '';
    const mode = modeFor(page);
    const here = () => ({ opened: openPage(sealer, ledger!, where, page, mode), onWorker: false });
    if (!worker || !online || broken) return Promise.resolve(here());
    const job = toJob(seq++, ledger, where, mode, page);
    const reply = new Promise<OpenReply>((resolve, reject) => waiting.set(job.id, { resolve, reject }));
    const transfer = job.page.kind === 'blocks' ? job.page.sealed.bytes.buffer : job.page.sealed.buffer;
    worker.postMessage(job, [transfer as ArrayBuffer]);
    return reply.then((r) => {
      const done = r.fail ? r.fail.index : pageRange(page).to - pageRange(page).from + 1;
      const opened: OpenedPage = {
        from: r.from,
        hashes: pageHashes(page).slice(0, done),
        bodies: unpack(r.bodies),
        roots: r.roots,
        firstPrevious: r.firstPrevious,
        fail: r.fail,
      };
      return { opened, onWorker: true };
    }, here);
  };
  const push = (page: ChainPage) => {
    const { from, to } = pageRange(page);
    seen += to - from + 1;
    if (long()) startWorker();
    ahead.push({ page, opened: open(page) });
  };

  try {
    let pending: StoredBlock[] = [];
    for await (const page of source) {
      if ('pack' in page) {
        if (pending.length > 0) push({ blocks: pending });
        pending = [];
        push(page);
      } else {
        pending.push(...page.blocks);
        if (pending.length < pageBlocks) continue;
        push({ blocks: pending });
        pending = [];
      }
      while (ahead.length > AHEAD) {
        const next = ahead.shift()!;
        yield { page: next.page, ...(await next.opened) };
      }
    }
    if (pending.length > 0) push({ blocks: pending });
    while (ahead.length > 0) {
      const next = ahead.shift()!;
      yield { page: next.page, ...(await next.opened) };
    }
  } finally {
    void (worker as Worker | null)?.terminate();
  }
}
