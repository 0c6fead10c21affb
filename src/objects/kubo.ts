import { ConfigError, IntegrityError, NotFoundError, type PawledgerError, UnavailableError } from '../errors.js';
import type { ObjectStore, PutRequest } from './object-store.js';
import { RetryAfterError, retryAfterFromHeaders } from '../util/retry.js';
import { CHUNK_SIZE, computeCid, parseCid, verifyBytes } from './unixfs.js';
import { DEFAULT_KUBO_API, kuboPlace } from './kubo-place.js';

export { DEFAULT_KUBO_API } from './kubo-place.js';

/** KuboStoreOptions configure the Kubo provider. */
export interface KuboStoreOptions {
  /** apiUrl is the node's RPC base (not a gateway). @default 'http://127.0.0.1:5001/api/v0' */
  apiUrl?: string;
  /** timeoutMs bounds each call, the answer's body included. @default 120_000 */
  timeoutMs?: number;
  /**
   * authorization is sent as the Authorization header, for a node with API.Authorizations ('Bearer …' or 'Basic …');
   * user:password in apiUrl is sent as Basic auth instead. Neither ever appears in the label.
   */
  authorization?: string;
  /**
   * offline makes get read the node's own blockstore only, so a CID the node lacks is NotFoundError at once. With
   * false the node may fetch from the network, and a CID nobody serves ends as UnavailableError after timeoutMs.
   * @default true
   */
  offline?: boolean;
  /** fetch replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
}

// Kubo's RPC gives nearly every error Code 0 and status 500, so its message is the only thing that tells a missing
// block or a missing pin from a failing node. These match the messages of Kubo's blockservice and pinner.
const NOT_FOUND = /not found|could not find|no link named/i;
const NOT_PINNED = /not pinned/i;

interface Failure {
  status: number;
  /** message is Kubo's `Message`, or null when the body is not Kubo's error JSON (a proxy, a gateway, another server). */
  message: string | null;
  /** retryAfterMs is the wait a 429 or 503 asked for (Kubo itself never says; a proxy in front may). */
  retryAfterMs: number | undefined;
}

/**
 * KuboStore puts files on a Kubo node over its RPC (every call a POST): `add` with CIDv1, raw leaves and 256 KiB
 * chunks, pinned; `cat` to read; `pin/rm` to unpin. It computes each CID locally too: an add whose CID differs from
 * the node's is IntegrityError (the node imports with other settings), and bytes read back are checked against the
 * CID (or a recorded SHA-256) before they are returned. Unpinned blocks are left to Kubo's own GC.
 */
export class KuboStore implements ObjectStore {
  readonly name = 'kubo';
  readonly contentAddressed = true;
  readonly label: string;
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #offline: boolean;
  readonly #fetch: typeof fetch;

  constructor(options: KuboStoreOptions = {}) {
    const { base, userinfo, label } = kuboPlace(options.apiUrl ?? DEFAULT_KUBO_API);
    const timeoutMs = options.timeoutMs ?? 120_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ConfigError(`Kubo timeout ${timeoutMs} ms is not a positive number`);
    this.#base = base;
    this.#timeoutMs = timeoutMs;
    const authorization =
      options.authorization ?? (userinfo ? `Basic ${Buffer.from(userinfo).toString('base64')}` : undefined);
    this.#headers = authorization ? { authorization } : {};
    this.#offline = options.offline ?? true;
    this.#fetch = options.fetch ?? fetch;
    this.label = label;
  }

  async put(bytes: Uint8Array, request: PutRequest): Promise<string> {
    const meta = { name: request.label };
    const expected = await computeCid(bytes);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)]), meta.name || 'file');
    const res = await this.#post(
      '/add',
      { 'cid-version': '1', 'raw-leaves': 'true', chunker: `size-${CHUNK_SIZE}`, pin: 'true' },
      form,
    );
    if (!res.ok) throw this.#typed(await this.#failure(res), `add ${meta.name}`);
    const text = await this.#read(res, (r) => r.text(), 'add');
    // /add answers one JSON object per line (one per file or folder it made); the last names the root.
    let hash: unknown;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let obj: { Hash?: unknown; Type?: unknown; Message?: unknown };
      try {
        obj = JSON.parse(line) as typeof obj;
      } catch {
        throw new UnavailableError(`${this.label} answered /add with a line that is not JSON`, {
          hint: 'Check that the API URL points at Kubo, then retry',
        });
      }
      if (obj.Type === 'error')
        throw this.#typed({ status: 500, message: String(obj.Message), retryAfterMs: undefined }, `add ${meta.name}`);
      hash = obj.Hash;
    }
    if (typeof hash !== 'string')
      throw new UnavailableError(`${this.label} answered /add without a CID`, { hint: 'Retry later' });
    let got: ReturnType<typeof parseCid>;
    try {
      got = parseCid(hash);
    } catch {
      throw new IntegrityError(
        `${this.label} answered /add with ${JSON.stringify(hash.slice(0, 80))}, which is not a CID`,
      );
    }
    if (!got.equals(parseCid(expected))) {
      throw new IntegrityError(
        `${this.label} stored ${meta.name} as CID ${got}, but its bytes make CID ${expected} with CIDv1, raw leaves and 256 KiB chunks`,
        {
          hint: `The node imports with other settings (see its Import.* config); set them to the defaults, and unpin ${got} (ipfs pin rm)`,
        },
      );
    }
    return expected;
  }

  async get(cid: string, options: { sha256?: string } = {}): Promise<Buffer> {
    const root = parseCid(cid).toString();
    const res = await this.#post('/cat', { arg: root, ...(this.#offline ? { offline: 'true' } : {}) });
    if (!res.ok) {
      const failure = await this.#failure(res);
      if (failure.message !== null && NOT_FOUND.test(failure.message)) {
        throw new NotFoundError(`CID ${root} is not on ${this.label}`, {
          hint: 'Restore from another tier, or pin it on this node first',
        });
      }
      throw this.#typed(failure, `read CID ${root}`);
    }
    const bytes = Buffer.from(await this.#read(res, (r) => r.arrayBuffer(), `cat ${root}`));
    // A failure after the bytes began comes only in an X-Stream-Error trailer, which fetch does not expose: the
    // check below catches the short body it leaves.
    try {
      await verifyBytes(root, bytes, options.sha256);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      throw new IntegrityError(`${this.label} returned bytes for CID ${root} that fail verification: ${err.message}`, {
        hint: 'The node may hold damaged blocks (ipfs repo verify); restore from another tier',
        cause: err,
      });
    }
    return bytes;
  }

  /** has asks the node whether `cid` is pinned (recursively): /pin/ls answers an error for one that is not. */
  async has(cid: string): Promise<boolean> {
    const root = parseCid(cid).toString();
    const res = await this.#post('/pin/ls', { arg: root, type: 'recursive' });
    if (res.ok) {
      await this.#read(res, (r) => r.arrayBuffer(), `pin ls ${root}`);
      return true;
    }
    const failure = await this.#failure(res);
    if (failure.message !== null && NOT_PINNED.test(failure.message)) return false;
    throw this.#typed(failure, `pin ls ${root}`);
  }

  async delete(cid: string): Promise<void> {
    const root = parseCid(cid).toString();
    const res = await this.#post('/pin/rm', { arg: root, recursive: 'true' });
    if (res.ok) {
      await this.#read(res, (r) => r.arrayBuffer(), `unpin ${root}`);
      return;
    }
    const failure = await this.#failure(res);
    if (failure.message !== null && NOT_PINNED.test(failure.message)) return; // already gone
    throw this.#typed(failure, `unpin ${root}`);
  }

  async check(): Promise<void> {
    const res = await this.#post('/version', {});
    if (!res.ok) throw this.#typed(await this.#failure(res), 'check');
    const text = await this.#read(res, (r) => r.text(), 'version');
    let version: unknown;
    try {
      version = (JSON.parse(text) as { Version?: unknown }).Version;
    } catch {
      // reported below
    }
    if (typeof version !== 'string') {
      throw new ConfigError(`${this.label} answered /version, but not as Kubo does`, {
        hint: `Point the API URL at Kubo's RPC, e.g. ${DEFAULT_KUBO_API}`,
      });
    }
  }

  async close(): Promise<void> {}

  /** #post sends one RPC call; a network failure or a timeout is UnavailableError, any HTTP answer is returned. */
  async #post(path: string, query: Record<string, string>, body?: FormData): Promise<Response> {
    const url = new URL(`${this.#base}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    try {
      return await this.#fetch(url, {
        method: 'POST',
        headers: this.#headers,
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(body ? { body } : {}),
      });
    } catch (err) {
      throw this.#networkError(err, path);
    }
  }

  /** #read reads an answer's body, under the same timeout as the call. */
  async #read<T>(res: Response, how: (res: Response) => Promise<T>, what: string): Promise<T> {
    try {
      return await how(res);
    } catch (err) {
      throw this.#networkError(err, what);
    }
  }

  async #failure(res: Response): Promise<Failure> {
    const text = await res.text().catch(() => '');
    const retryAfterMs = res.status === 429 || res.status === 503 ? retryAfterFromHeaders(res.headers) : undefined;
    try {
      const body = JSON.parse(text) as { Message?: unknown; Type?: unknown };
      if (typeof body.Message === 'string') return { status: res.status, message: body.Message, retryAfterMs };
    } catch {
      // not Kubo's error JSON
    }
    return { status: res.status, message: null, retryAfterMs };
  }

  /** #typed turns an HTTP failure into pawledger's errors by what it means for the operator. */
  #typed(f: Failure, what: string): PawledgerError {
    const said = f.message === null ? `HTTP ${f.status}` : `HTTP ${f.status}: ${f.message}`;
    const msg = `${this.label} could not ${what} (${said})`;
    if (f.status === 401 || f.status === 403) {
      return new ConfigError(msg, {
        hint: "Set the Kubo authorization to a secret listed in the node's API.Authorizations",
      });
    }
    if (f.status === 429 || f.status >= 500) {
      return new RetryAfterError(msg, {
        retryAfterMs: f.retryAfterMs,
        hint: 'Retry later; if it persists, read the Kubo daemon log',
      });
    }
    if (f.status === 404 || f.status === 405) {
      return new ConfigError(msg, {
        hint: `The API URL does not lead to Kubo's RPC: use its base, e.g. ${DEFAULT_KUBO_API}, not a gateway`,
      });
    }
    return new ConfigError(msg, { hint: 'The node refused the request: check that it runs a recent Kubo' });
  }

  #networkError(err: unknown, what: string): UnavailableError {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
      return new UnavailableError(`${this.label} did not answer ${what} within ${this.#timeoutMs / 1000} s`, {
        hint: 'Check that the Kubo daemon is running and not overloaded, then retry',
        cause: err,
      });
    }
    const code = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
    return new UnavailableError(`${this.label} cannot be reached for ${what} (${code})`, {
      hint: 'Start the Kubo daemon (ipfs daemon) or fix the API URL, then retry',
      cause: err,
    });
  }
}
