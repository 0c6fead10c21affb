/**
 * The worker thread of openedPages (parallel-open.ts): it opens pages (page-opener.ts) with the ledger's key, handed
 * over once in workerData, and posts each result back with its bodies packed in one transferred buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Sealer } from '../crypto/seal.js';
import { openPage, pack, unpack } from './page-opener.js';
import type { OpenJob, OpenReply } from './parallel-open.js';

const key = workerData as { bytes: Uint8Array; id: string };
const sealer = new Sealer({ bytes: Buffer.from(key.bytes), id: key.id });
parentPort!.on('message', (job: OpenJob) => {
  const sealed = unpack(job.sealed);
  const page = sealed.map((s, i) => ({ height: job.heights[i]!, hash: job.hashes[i]!, sealed: s }));
  const { bodies, roots, fail } = openPage(sealer, job.ledgerId, job.where, page);
  const reply: OpenReply = { id: job.id, bodies: pack(bodies), roots, fail };
  parentPort!.postMessage(reply, [reply.bodies.bytes.buffer as ArrayBuffer]);
});
