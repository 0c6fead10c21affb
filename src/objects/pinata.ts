import {
  ConfigError,
  IntegrityError,
  NotFoundError,
  type PawledgerError,
  UnavailableError,
  ValidationError,
} from '../errors.js';
import { redactUrl } from '../db/url.js';
import type { Logger } from '../log.js';
import type { ObjectStore, PutRequest } from './object-store.js';

/** PinMeta names a pin in Pinata's metadata (at most 10 keyvalues). */
export interface PinMeta {
  name: string;
  keyvalues?: Record<string, string>;
}
import { RetryAfterError, retryAfterFromHeaders } from '../util/retry.js';
import type * as Unixfs from './unixfs.js';

// The IPFS stack (UnixFS, CARs) loads at the first call that needs it, not with the store: a start that never reaches
// IPFS (the database was fresher) must not pay its import.
let unixfsModule: Promise<typeof Unixfs> | null = null;
const unixfs = () => (unixfsModule ??= import('./unixfs.js'));

/** PinataAuth is either an API key pair (PINATA_API_KEY, PINATA_SECRET_KEY) or a JWT (PINATA_JWT). */
export type PinataAuth = { apiKey: string; secretKey: string } | { jwt: string };

/** PinataOptions configure PinataStore. */
export interface PinataOptions {
  /** apiUrl is the legacy pinning API. @default https://api.pinata.cloud */
  apiUrl?: string;
  /** gatewayUrl serves `/ipfs/{cid}`; a dedicated gateway (`https://NAME.mypinata.cloud`) is less rate limited. @default https://gateway.pinata.cloud */
  gatewayUrl?: string;
  /** gatewayToken is a dedicated gateway's access token, sent as `pinataGatewayToken`. */
  gatewayToken?: string;
  auth: PinataAuth;
  /** timeoutMs bounds each request, body included. @default 30000 */
  timeoutMs?: number;
  /** fetch is injectable for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  log?: Pick<Logger, 'warn' | 'info'>;
  /**
   * strictCid refuses (IntegrityError) a multi-chunk upload whose returned CID no known UnixFS profile reproduces.
   * By default such a CID is accepted as "unverifiable": retrieval then checks it block by block from a CAR, or
   * against the SHA-256 the caller recorded. @default false
   */
  strictCid?: boolean;
}

/** PinResult is Pinata's answer to an upload, and how its CID was checked. */
export interface PinResult {
  cid: string;
  pinSize: number;
  timestamp: string;
  isDuplicate: boolean;
  /** verified is 'cid' when the CID was recomputed from the bytes, 'unverifiable' when no known profile gives it. */
  verified: 'cid' | 'unverifiable';
}

/** PinRow is one row of Pinata's pin list. */
export interface PinRow {
  id: string;
  cid: string;
  size: number;
  name: string | null;
  keyvalues: Record<string, string>;
  datePinned: string;
  dateUnpinned: string | null;
}

/** PinListFilter selects pins; `name` matches exactly (checked again here, as Pinata's own match is undocumented). */
export interface PinListFilter {
  name?: string;
  /** hashContains keeps pins whose CID contains this text. */
  hashContains?: string;
  keyvalues?: Record<string, string>;
  /** @default 'pinned' */
  status?: 'pinned' | 'unpinned' | 'all';
  /** pageLimit is the page size, at most 1000. @default 1000 */
  pageLimit?: number;
}

const RAW_CODEC = 0x55;
const CAR_TYPE = 'application/vnd.ipld.car';
const RAW_TYPE = 'application/vnd.ipld.raw';

function baseUrl(raw: string, what: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`${what} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new ConfigError(`${what} must be an http(s) URL, got ${u.protocol}`);
  return u.toString().replace(/\/+$/, '');
}

/**
 * PinataStore keeps files on IPFS through Pinata's pinning API and reads them back through a Pinata gateway,
 * verifying everything it reads. It makes one request per call (wrap it with retryingStore for backoff) and
 * converts every failure to a typed error whose text never holds a key, secret, JWT or gateway token.
 */
export class PinataStore implements ObjectStore {
  readonly name = 'pinata';
  readonly contentAddressed = true;
  readonly label: string;
  private readonly apiUrl: string;
  private readonly gatewayUrl: string;
  private readonly gatewayToken: string | undefined;
  private readonly auth: PinataAuth;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly log: Pick<Logger, 'warn' | 'info'> | undefined;
  private readonly strictCid: boolean;
  /** credentialVars names the environment variables an operator should check after a 401. */
  private readonly credentialVars: string;
  private readonly secrets: string[];

  constructor(options: PinataOptions) {
    const auth = options.auth as Partial<{ apiKey: unknown; secretKey: unknown; jwt: unknown }> | undefined;
    const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
    if (auth && 'jwt' in auth) {
      if (!nonEmpty(auth.jwt))
        throw new ConfigError('PINATA_JWT is empty', {
          hint: 'Set PINATA_JWT to a Pinata API JWT, or use PINATA_API_KEY and PINATA_SECRET_KEY',
        });
      this.auth = { jwt: auth.jwt };
      this.credentialVars = 'PINATA_JWT';
    } else {
      if (!auth || !nonEmpty(auth.apiKey) || !nonEmpty(auth.secretKey)) {
        throw new ConfigError('Pinata needs both PINATA_API_KEY and PINATA_SECRET_KEY (or PINATA_JWT)', {
          hint: 'Copy the key pair from the Pinata dashboard (API Keys)',
        });
      }
      this.auth = { apiKey: auth.apiKey, secretKey: auth.secretKey };
      this.credentialVars = 'PINATA_API_KEY and PINATA_SECRET_KEY';
    }
    this.apiUrl = baseUrl(options.apiUrl ?? 'https://api.pinata.cloud', 'Pinata API URL');
    this.gatewayUrl = baseUrl(options.gatewayUrl ?? 'https://gateway.pinata.cloud', 'Pinata gateway URL');
    this.gatewayToken = options.gatewayToken || undefined;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (!(this.timeoutMs > 0)) throw new ConfigError('Pinata timeoutMs must be positive');
    this.fetch = options.fetch ?? globalThis.fetch;
    this.log = options.log;
    this.strictCid = options.strictCid ?? false;
    this.secrets = [...Object.values(this.auth), this.gatewayToken].filter(
      (s): s is string => typeof s === 'string' && s.length >= 4,
    );
    const kind = 'jwt' in this.auth ? 'JWT' : 'API key';
    this.label = `pinata (${redactUrl(this.apiUrl)}, gateway ${redactUrl(this.gatewayUrl)}, ${kind})`;
  }

  /** check calls testAuthentication. A pass proves the credentials, not that the key may pin (see EXTERNAL-APIS.md). */
  async check(): Promise<void> {
    await this.testAuthentication();
  }

  /** testAuthentication returns Pinata's greeting, or throws ConfigError naming the variables to check. */
  async testAuthentication(): Promise<string> {
    const res = await this.api('GET', '/data/testAuthentication', 'testing authentication');
    const body = (await this.json(res, 'testing authentication')) as { message?: unknown };
    return typeof body.message === 'string' ? body.message : '';
  }

  /** add pins `bytes` and returns the CID (see pinFileToIPFS for how a CID Pinata returns is checked). */
  async put(bytes: Uint8Array, request: PutRequest): Promise<string> {
    return (
      await this.pinFileToIPFS(bytes, {
        name: request.label,
        ...(request.keyvalues ? { keyvalues: request.keyvalues } : {}),
      })
    ).cid;
  }

  /**
   * pinFileToIPFS uploads `bytes` as one file, CIDv1 and not wrapped, and checks the returned CID against the bytes:
   * equal to computeCid, or reproduced by another known profile, it is accepted. A single-chunk file has no other
   * honest CID, so a mismatch there throws IntegrityError; a multi-chunk one may have been chunked differently, so it
   * is accepted as 'unverifiable' with a warning (or refused when strictCid). Nothing is unpinned on a mismatch: the
   * CID Pinata named might be another backup's.
   */
  async pinFileToIPFS(bytes: Uint8Array, meta: PinMeta): Promise<PinResult> {
    const { CHUNK_SIZE, computeCid, matchProfile, parseCid } = await unixfs();
    const keyvalues = meta.keyvalues ?? {};
    if (Object.keys(keyvalues).length > 10)
      throw new ValidationError(`Pinata takes at most 10 keyvalues, got ${Object.keys(keyvalues).length}`, 'keyvalues');
    if (!meta.name) throw new ValidationError('A pin needs a name', 'name');
    const expected = await computeCid(bytes);
    const form = new FormData();
    const filename = meta.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
    form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), filename);
    form.append('pinataMetadata', JSON.stringify({ name: meta.name, keyvalues }));
    form.append('pinataOptions', JSON.stringify({ cidVersion: 1, wrapWithDirectory: false }));
    const what = `pinning ${meta.name}`;
    const res = await this.api('POST', '/pinning/pinFileToIPFS', what, { body: form });
    const body = (await this.json(res, what)) as {
      IpfsHash?: unknown;
      PinSize?: unknown;
      Timestamp?: unknown;
      isDuplicate?: unknown;
    };
    if (typeof body.IpfsHash !== 'string') throw new UnavailableError(`Pinata answered ${what} without an IpfsHash`);
    const cid = body.IpfsHash;
    try {
      parseCid(cid);
    } catch {
      throw new UnavailableError(
        `Pinata answered ${what} with ${JSON.stringify(cid.slice(0, 80))}, which is not a CID`,
      );
    }
    const result = {
      cid,
      pinSize: Number(body.PinSize ?? 0),
      timestamp: String(body.Timestamp ?? ''),
      isDuplicate: body.isDuplicate === true,
    };
    if (cid === expected) return { ...result, verified: 'cid' };
    const profile = await matchProfile(cid, bytes);
    if (profile) {
      this.log?.info(
        { cid, expected, profile: profile.name },
        'Pinata built the CID with other UnixFS parameters; it still matches the bytes',
      );
      return { ...result, verified: 'cid' };
    }
    if (bytes.length <= CHUNK_SIZE || this.strictCid) {
      throw new IntegrityError(`Pinata returned CID ${cid} for ${what}, but those bytes have CID ${expected}`, {
        hint: `Pinata holds something other than what was sent; the upload is not used. Check CID ${cid} in the Pinata dashboard before unpinning it`,
      });
    }
    this.log?.warn(
      { cid, expected, bytes: bytes.length },
      'Pinata chunked the file differently: its CID cannot be recomputed, so reads are checked from a CAR or against the recorded SHA-256',
    );
    return { ...result, verified: 'unverifiable' };
  }

  /** pinList yields the pins matching `filter`, page by page (Pinata's /data/* limit is about 30 requests a minute). */
  async *pinList(filter: PinListFilter = {}): AsyncGenerator<PinRow> {
    const pageLimit = filter.pageLimit ?? 1000;
    if (!Number.isInteger(pageLimit) || pageLimit < 1 || pageLimit > 1000)
      throw new ValidationError('pageLimit must be 1..1000', 'pageLimit');
    for (let offset = 0; ; ) {
      const q = new URLSearchParams({
        status: filter.status ?? 'pinned',
        pageLimit: String(pageLimit),
        pageOffset: String(offset),
      });
      if (filter.name !== undefined) q.set('metadata[name]', filter.name);
      if (filter.hashContains !== undefined) q.set('hashContains', filter.hashContains);
      if (filter.keyvalues && Object.keys(filter.keyvalues).length > 0) {
        q.set(
          'metadata[keyvalues]',
          JSON.stringify(
            Object.fromEntries(Object.entries(filter.keyvalues).map(([k, v]) => [k, { value: v, op: 'eq' }])),
          ),
        );
      }
      const res = await this.api('GET', `/data/pinList?${q}`, 'listing pins');
      const body = (await this.json(res, 'listing pins')) as { rows?: unknown };
      if (!Array.isArray(body.rows)) throw new UnavailableError('Pinata answered pinList without rows');
      for (const raw of body.rows as Record<string, unknown>[]) {
        const row = toPinRow(raw);
        if (filter.name !== undefined && row.name !== filter.name) continue;
        yield row;
      }
      if (body.rows.length < pageLimit) return;
      offset += body.rows.length;
    }
  }

  /**
   * has asks whether `cid` is pinned: pinList filtered by hashContains (a filter of Pinata's legacy pinList, not
   * confirmed here), and only a row naming exactly this CID counts.
   */
  async has(cid: string): Promise<boolean> {
    for await (const row of this.pinList({ hashContains: cid, pageLimit: 10 })) if (row.cid === cid) return true;
    return false;
  }

  /** delete unpins `cid`. */
  async delete(cid: string): Promise<void> {
    await this.unpin(cid);
  }

  /** unpin removes the pin; a CID that is not pinned (CURRENT_USER_HAS_NOT_PINNED_CID, or 404) is already gone. */
  async unpin(cid: string): Promise<void> {
    const { parseCid } = await unixfs();
    parseCid(cid);
    const what = `unpinning ${cid}`;
    const res = await this.send('api', 'DELETE', `/pinning/unpin/${encodeURIComponent(cid)}`, what, {}, true);
    if (res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      return;
    }
    if (res.status === 404) return;
    const err = await this.failure(res, what);
    if (err.reason === 'CURRENT_USER_HAS_NOT_PINNED_CID') return;
    throw err.error;
  }

  /**
   * get fetches `cid` through the gateway and verifies it: a raw CID as `?format=raw` (one block, hashed); a dag-pb CID
   * as `?format=car`, every block hash-checked from the root. A gateway that ignores the format sends the file itself,
   * checked with verifyBytes (recomputed CID, or the recorded `sha256`). A recorded `sha256` must match in every case.
   */
  async get(cid: string, options: { sha256?: string } = {}): Promise<Buffer> {
    const { bytesFromCar, parseCid, sha256Hex, verifyBlock, verifyBytes } = await unixfs();
    const c = parseCid(cid);
    const format = c.code === RAW_CODEC ? 'raw' : 'car';
    let res = await this.gateway(cid, format);
    if (res === 'unsupported') res = await this.gateway(cid, null);
    if (res === 'unsupported') throw new UnavailableError(`Pinata gateway refused /ipfs/${cid}`);
    const type = res.headers.get('content-type') ?? '';
    const body = await this.readBody(res, `fetching ${cid}`);
    let bytes: Buffer;
    if (format === 'raw') {
      verifyBlock(c, body);
      bytes = body;
    } else if (type.includes(CAR_TYPE)) {
      bytes = await bytesFromCar(cid, body);
    } else {
      await verifyBytes(cid, body, options.sha256);
      return body;
    }
    if (options.sha256 !== undefined && sha256Hex(bytes) !== options.sha256.toLowerCase()) {
      throw new IntegrityError(`Content fetched for CID ${cid} matches the CID but not its recorded SHA-256`, {
        hint: 'The backup record points at the wrong CID: check the record before restoring from it',
      });
    }
    return bytes;
  }

  async close(): Promise<void> {}

  /** gateway asks for `/ipfs/{cid}` in `format`; 'unsupported' when the gateway refuses the format itself. */
  private async gateway(cid: string, format: 'raw' | 'car' | null): Promise<Response | 'unsupported'> {
    const q = new URLSearchParams();
    if (format) q.set('format', format);
    if (this.gatewayToken) q.set('pinataGatewayToken', this.gatewayToken);
    const headers: Record<string, string> = {};
    if (format) headers.accept = format === 'car' ? `${CAR_TYPE};version=1` : RAW_TYPE;
    const path = `/ipfs/${encodeURIComponent(cid)}${q.toString() ? `?${q}` : ''}`;
    const what = `fetching /ipfs/${cid}${format ? `?format=${format}` : ''} from the gateway`;
    const res = await this.send('gateway', 'GET', path, what, { headers }, false);
    if (res.ok) return res;
    if (format && [400, 406, 415, 501].includes(res.status)) {
      await res.arrayBuffer().catch(() => undefined);
      return 'unsupported';
    }
    const status = res.status;
    const retryAfterMs = retryAfterFromHeaders(res.headers);
    await res.arrayBuffer().catch(() => undefined);
    if (status === 404 || status === 410)
      throw new NotFoundError(`Pinata gateway has no content for CID ${cid}`, {
        hint: 'The pin may have been removed: restore from another tier',
      });
    if (status === 401 || status === 403) {
      throw new ConfigError(`Pinata gateway refused CID ${cid} (HTTP ${status})`, {
        hint: this.gatewayToken
          ? 'Check PINATA_GATEWAY_TOKEN: it must be an access token of this dedicated gateway'
          : 'This gateway needs an access token: set PINATA_GATEWAY_TOKEN, or use another gateway',
      });
    }
    if (status === 408 || status === 429 || status >= 500)
      throw new RetryAfterError(`Pinata gateway failed ${what} (HTTP ${status})`, { retryAfterMs });
    // Any other refusal (451 blocked, 400) will not pass by retrying: for a restore it is as good as absent.
    throw new NotFoundError(`Pinata gateway will not serve CID ${cid} (HTTP ${status})`, {
      hint: 'Restore from another tier, or try another gateway',
    });
  }

  /** api sends one API request and returns a 2xx response, or throws the typed error for the failure. */
  private async api(method: string, path: string, what: string, init: { body?: FormData } = {}): Promise<Response> {
    const res = await this.send('api', method, path, what, init, true);
    if (res.ok) return res;
    throw (await this.failure(res, what)).error;
  }

  private async send(
    target: 'api' | 'gateway',
    method: string,
    path: string,
    what: string,
    init: { body?: FormData; headers?: Record<string, string> },
    withAuth: boolean,
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (withAuth) {
      if ('jwt' in this.auth) headers.authorization = `Bearer ${this.auth.jwt}`;
      else {
        headers.pinata_api_key = this.auth.apiKey;
        headers.pinata_secret_api_key = this.auth.secretKey;
      }
    }
    const url = `${target === 'api' ? this.apiUrl : this.gatewayUrl}${path}`;
    try {
      return await this.fetch(url, {
        method,
        headers,
        body: init.body ?? null,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw this.networkError(err, what);
    }
  }

  private networkError(err: unknown, what: string): UnavailableError {
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return new UnavailableError(`Pinata ${what}: no answer within ${this.timeoutMs} ms`);
    const why = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
    return new UnavailableError(`Pinata ${what}: network error (${this.scrub(why)})`, {
      hint: 'Check the network and https://status.pinata.cloud',
    });
  }

  private async readBody(res: Response, what: string): Promise<Buffer> {
    try {
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw this.networkError(err, what);
    }
  }

  private async json(res: Response, what: string): Promise<unknown> {
    const text = (await this.readBody(res, what)).toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UnavailableError(`Pinata answered ${what} with something that is not JSON`);
    }
  }

  /** failure turns a non-2xx API answer into the typed error (and Pinata's reason, for callers that accept some). */
  private async failure(res: Response, what: string): Promise<{ error: PawledgerError; reason: string | undefined }> {
    const text = (await res.text().catch(() => '')).slice(0, 2000);
    let reason: string | undefined;
    let details: string | undefined;
    try {
      const body = JSON.parse(text) as { error?: unknown; message?: unknown };
      if (body.error && typeof body.error === 'object') {
        const e = body.error as { reason?: unknown; details?: unknown };
        reason = typeof e.reason === 'string' ? e.reason : undefined;
        details = typeof e.details === 'string' ? e.details : undefined;
      } else if (typeof body.error === 'string') details = body.error;
      else if (typeof body.message === 'string') details = body.message;
    } catch {
      details = text.trim() || undefined;
    }
    const status = res.status;
    const tail = this.scrub(
      `HTTP ${status}${reason ? ` ${reason}` : ''}${details ? `: ${details.slice(0, 200)}` : ''}`,
    );
    const vars = this.credentialVars;
    let error: PawledgerError;
    if (status === 401 || reason === 'KEYS_MUST_BE_STRINGS' || reason === 'INVALID_CREDENTIALS') {
      error = new ConfigError(`Pinata rejected the credentials in ${vars} while ${what} (${tail})`, {
        hint: `Check ${vars}: the key may be mistyped, deleted or revoked`,
      });
    } else if (status === 403) {
      const scope = what.startsWith('pinning')
        ? 'pinFileToIPFS'
        : what.startsWith('unpinning')
          ? 'unpin'
          : what.startsWith('listing')
            ? 'pinList'
            : 'needed';
      error = new ConfigError(`Pinata refused ${what}: the key in ${vars} lacks the ${scope} permission (${tail})`, {
        hint:
          reason === 'API_KEY_REVOKED'
            ? `The key was revoked: create a new one and set ${vars}`
            : `Give the key in ${vars} the ${scope} permission (or make it an admin key) in the Pinata dashboard`,
      });
    } else if (status === 404) {
      error = new NotFoundError(`Pinata found nothing while ${what} (${tail})`);
    } else if (status === 408 || status === 429 || status >= 500) {
      error = new RetryAfterError(`Pinata ${what} failed (${tail})`, {
        retryAfterMs: retryAfterFromHeaders(res.headers),
      });
    } else {
      error = new ValidationError(`Pinata refused ${what} (${tail})`);
    }
    return { error, reason };
  }

  /** scrub blanks every credential in text that came from outside (a service may echo what it was sent). */
  private scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }
}

function toPinRow(raw: Record<string, unknown>): PinRow {
  const meta = (raw.metadata ?? {}) as { name?: unknown; keyvalues?: unknown };
  const kv = meta.keyvalues && typeof meta.keyvalues === 'object' ? (meta.keyvalues as Record<string, unknown>) : {};
  return {
    id: String(raw.id ?? ''),
    cid: String(raw.ipfs_pin_hash ?? ''),
    size: Number(raw.size ?? 0),
    name: typeof meta.name === 'string' ? meta.name : null,
    keyvalues: Object.fromEntries(Object.entries(kv).map(([k, v]) => [k, String(v)])),
    datePinned: String(raw.date_pinned ?? ''),
    dateUnpinned: typeof raw.date_unpinned === 'string' ? raw.date_unpinned : null,
  };
}
