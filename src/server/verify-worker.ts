/**
 * The worker thread of verifyInWorker (verify-thread.ts): it opens the ledger read-only from the configuration it is
 * handed, verifies every stored block, posts the report (or the failure's message) and exits. Opening read-only takes
 * no lock and touches no tier, as `pawledger verify` does beside a running server. verify-thread.ts has already
 * lowered this thread's CPU priority.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config.js';
import { IntegrityError } from '../errors.js';
import { Ledger } from '../service/ledger.js';
import type { VerifyReply } from './verify-thread.js';

async function run(config: Config): Promise<VerifyReply> {
  let ledger: Ledger | undefined;
  try {
    // Opening replays the chain: a store that does not verify fails here, and is reported as verify reports it.
    ledger = await Ledger.open({ config, readOnly: true });
    return { report: await ledger.verify() };
  } catch (err) {
    if (err instanceof IntegrityError) return { report: { ok: false, reason: err.message } };
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    await ledger?.close().catch(() => undefined);
  }
}

parentPort!.postMessage(await run((workerData as { config: Config }).config));
