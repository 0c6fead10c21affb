import { Worker } from 'node:worker_threads';
import type { Config } from '../config.js';
import type { VerifyReport } from '../service/ledger.js';

/** VerifyReply is what the verify worker posts: the report, or the message of a failure that is not the chain's. */
export type VerifyReply = { report: VerifyReport } | { error: string };

// The worker starts at the lowest CPU priority, for its thread only (on Linux a thread has its own nice value),
// before it loads anything: where cores are scarce, the event loop serving requests goes first and the verification
// takes longer, never the other way round. Built code loads the compiled worker; run from the TypeScript sources
// (tests, `node --import tsx`), the worker loads them through tsx, which is then installed (a devDependency), so
// that tests measure the server as it runs.
function startWorker(config: Config): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const url = new URL(fromSources ? './verify-worker.ts' : './verify-worker.js', import.meta.url).href;
  const load = fromSources
    ? `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`
    : `import(${JSON.stringify(url)})`;
  const boot = `try { require('node:os').setPriority(19); } catch {}\n${load}.catch((err) => { throw err; });`;
  return new Worker(boot, { eval: true, workerData: { config } });
}

/**
 * verifyInWorker returns a verification that runs on a worker thread: the ledger's stored chain (config.dataDir),
 * opened read-only and verified there, so that a long chain costs a core for a while instead of stalling this
 * thread's event loop (and every request with it) for as long. Each call starts a worker and ends it; VerifyCache
 * makes sure there is never more than one. It rejects when the worker cannot verify (the store is unreadable).
 */
export function verifyInWorker(config: Config): () => Promise<VerifyReport> {
  return () =>
    new Promise<VerifyReport>((resolve, reject) => {
      const worker = startWorker(config);
      let settled = false;
      worker.once('message', (reply: VerifyReply) => {
        settled = true;
        if ('report' in reply) resolve(reply.report);
        else reject(new Error(`verifying the chain failed: ${reply.error}`));
      });
      worker.once('error', (err) => {
        settled = true;
        reject(err);
      });
      worker.once('exit', (code) => {
        if (!settled) reject(new Error(`the verify worker exited with code ${code} before answering`));
      });
    });
}
