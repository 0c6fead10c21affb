/**
 * The worker thread of openedPages (parallel-open.ts): it opens pages (page-opener.ts) with the ledger's keyring, handed
 * over once in workerData, and posts each result back with its bodies packed in one transferred buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Sealer } from '../crypto/seal.js';
import { openPage, pack } from './page-opener.js';
import { fromJob, type OpenJob, type OpenReply } from './parallel-open.js';

const sealer = Sealer.fromWorker(workerData as { bytes: Uint8Array; id: string }[]);
parentPort!.on('message', (job: OpenJob) => {
  const { from, bodies, roots, firstPrevious, fail } = openPage(
    sealer,
    job.ledgerId,
    job.where,
    fromJob(job),
    job.mode,
  );
  const reply: OpenReply = { id: job.id, from, bodies: pack(bodies), roots, firstPrevious, fail };
  parentPort!.postMessage(reply, [reply.bodies.bytes.buffer as ArrayBuffer]);
});
