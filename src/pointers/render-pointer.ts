import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BackupRecord } from '../crypto/records.js';
import type { CidPointer, PointerStore } from './pointer.js';
import { RenderEnvClient } from './render.js';

/** RENDER_CID_VAR is the Render env var that holds the newest IPFS manifest CID. */
export const RENDER_CID_VAR = 'LEDGER_LATEST_CID';

/**
 * RenderPointerStore keeps the newest manifest CID in the Render service's env var LEDGER_LATEST_CID, so it survives
 * a deploy that wipes both the disk and an unconfigured database. Writes are paced and coalesced by the client and
 * never waited for by an upload (close() flushes the last one); reads always ask the API, since the process's own
 * environment is stale after an update.
 */
export class RenderPointerStore implements PointerStore {
  readonly name = 'render';
  readonly #client: RenderEnvClient;
  readonly #log: Logger;

  constructor(options: { apiKey: string; serviceId: string; apiUrl: string; log: Logger }) {
    this.#client = new RenderEnvClient({
      apiKey: options.apiKey,
      serviceId: options.serviceId,
      apiUrl: options.apiUrl,
      log: options.log,
    });
    this.#log = options.log;
  }

  async latest(): Promise<CidPointer | null> {
    const cid = await this.#client.getVar(RENDER_CID_VAR);
    return cid ? { cid } : null;
  }

  async save(record: BackupRecord, head: boolean): Promise<void> {
    if (!head) return;
    this.#client.putVar(RENDER_CID_VAR, record.id).catch((err: unknown) => {
      this.#log.warn(
        { pointer: 'render', err: describeError(err) },
        `Could not keep the newest IPFS CID in Render's ${RENDER_CID_VAR}: ${describeError(err)}`,
      );
    });
  }

  /** flush waits for the pending write of the newest CID (written or failed: a failure was logged). */
  async flush(): Promise<void> {
    await this.#client.flush();
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => {});
  }
}
