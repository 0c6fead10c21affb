/**
 * The worker thread of ParallelOpener: it opens pages (page-opener.ts) with the ledger's key, handed over once in
 * workerData, and posts each result back with its bodies' buffer transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Sealer } from '../crypto/seal.js';
import { openPage, type OpenJob } from './page-opener.js';

const key = workerData as { bytes: Uint8Array; id: string };
const sealer = new Sealer({ bytes: Buffer.from(key.bytes), id: key.id });
parentPort!.on('message', (job: OpenJob) => {
  const opened = openPage(sealer, job);
  parentPort!.postMessage(opened, [opened.bodies.buffer as ArrayBuffer]);
});
