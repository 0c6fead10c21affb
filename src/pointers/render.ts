import { ConfigError, NotFoundError, type PawledgerError, UnavailableError, ValidationError } from '../errors.js';
import { redactUrl } from '../db/url.js';
import type { Logger } from '../log.js';
import { RetryAfterError, retryAfterFromHeaders, withRetry, type RetryOptions } from '../util/retry.js';

/** RenderEnvOptions configure RenderEnvClient. */
export interface RenderEnvOptions {
  /** @default https://api.render.com/v1 */
  apiUrl?: string;
  /** apiKey is RENDER_API_KEY (never logged). */
  apiKey: string;
  /** serviceId is RENDER_SERVICE_ID (`srv-...`), the service whose env vars are used. */
  serviceId: string;
  /** fetch is injectable for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** minIntervalMs is the least time between two writes; Render allows about 30 writes a minute. @default 2100 */
  minIntervalMs?: number;
  /** timeoutMs bounds each request. @default 15000 */
  timeoutMs?: number;
  /** retry tunes retries of 429/5xx/network failures. @default { attempts: 5, baseMs: minIntervalMs, maxMs: 30000 } */
  retry?: Omit<RetryOptions, 'what' | 'log'>;
  log?: Pick<Logger, 'warn'>;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Pending is the newest value waiting to be written for one key, and everyone waiting for it. */
interface Pending {
  value: string;
  waiters: Waiter[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * RenderEnvClient reads and writes single environment variables of one Render service, so a value (the newest
 * backup CID) outlives the service's disk. Writes use the single-variable PUT only, never the replace-all PUT that
 * would delete every other variable. Writes are paced at one per minIntervalMs and coalesced: while a key waits
 * for its turn, later values replace earlier ones, so a burst costs at most two writes and the last value wins.
 * Updating a variable does not redeploy, so the process's own environment is stale: read with getVar.
 */
export class RenderEnvClient {
  readonly label: string;
  private readonly apiUrl: string;
  private readonly apiKey: string;
  private readonly serviceId: string;
  private readonly fetch: typeof fetch;
  private readonly minIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly retry: Omit<RetryOptions, 'what'>;
  private readonly pending = new Map<string, Pending>();
  private draining: Promise<void> | undefined;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private serviceConfirmed = false;
  private closed = false;

  constructor(options: RenderEnvOptions) {
    if (!options.apiKey)
      throw new ConfigError('RENDER_API_KEY is empty', {
        hint: 'Create an API key in the Render dashboard (Account Settings, API Keys) and set RENDER_API_KEY',
      });
    if (!options.serviceId)
      throw new ConfigError('RENDER_SERVICE_ID is empty', {
        hint: 'Set RENDER_SERVICE_ID to the service id (srv-...) shown in the service URL',
      });
    let u: URL;
    try {
      u = new URL(options.apiUrl ?? 'https://api.render.com/v1');
    } catch {
      throw new ConfigError('Render API URL is not a URL');
    }
    this.apiUrl = u.toString().replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.serviceId = options.serviceId;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.minIntervalMs = options.minIntervalMs ?? 2100;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.retry = {
      attempts: 5,
      baseMs: Math.max(this.minIntervalMs, 100),
      maxMs: 30_000,
      ...options.retry,
      ...(options.log ? { log: options.log } : {}),
    };
    this.label = `render (${redactUrl(this.apiUrl)}, service ${this.serviceId})`;
  }

  /** getVar returns the variable's current value, or null when the service has no such variable. */
  async getVar(key: string): Promise<string | null> {
    checkKey(key);
    const what = `reading ${key}`;
    return withRetry(
      async () => {
        const res = await this.request('GET', `/env-vars/${encodeURIComponent(key)}`, what);
        if (res.status === 404) {
          await res.arrayBuffer().catch(() => undefined);
          await this.confirmService();
          return null;
        }
        if (!res.ok) throw await this.failure(res, what);
        const body = (await this.json(res, what)) as { value?: unknown; envVar?: { value?: unknown } };
        const value = body.value ?? body.envVar?.value;
        if (typeof value !== 'string') throw new UnavailableError(`Render answered ${what} without a value`);
        this.serviceConfirmed = true;
        return value;
      },
      { ...this.retry, what: `Render ${what}` },
    );
  }

  /**
   * putVar sets one variable. It resolves once `value`, or a later value for the same key that replaced it while
   * waiting, is written; it rejects with the write's error if that write fails after its retries.
   */
  putVar(key: string, value: string): Promise<void> {
    if (!KEY.test(key))
      return Promise.reject(new ValidationError(`${JSON.stringify(key)} is not an environment variable name`, 'key'));
    if (typeof value !== 'string')
      return Promise.reject(new ValidationError('An env var value must be a string', 'value'));
    if (this.closed) return Promise.reject(new UnavailableError('RenderEnvClient is closed'));
    return new Promise<void>((resolve, reject) => {
      const entry = this.pending.get(key);
      if (entry) {
        entry.value = value;
        entry.waiters.push({ resolve, reject });
      } else {
        this.pending.set(key, { value, waiters: [{ resolve, reject }] });
      }
      this.kick();
    });
  }

  /** kick starts the writer unless it runs; a value put while it was finishing restarts it. */
  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.pending.size > 0) this.kick();
    });
  }

  /** flush resolves once every value given to putVar so far has been written or has failed. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** listVars yields every variable of the service, page by page. */
  async *listVars(): AsyncGenerator<{ key: string; value: string }> {
    for (let cursor: string | undefined; ; ) {
      const q = new URLSearchParams({ limit: '100' });
      if (cursor) q.set('cursor', cursor);
      const res = await this.request('GET', `/env-vars?${q}`, 'listing env vars');
      if (res.status === 404) throw this.noService(res);
      if (!res.ok) throw await this.failure(res, 'listing env vars');
      const rows = (await this.json(res, 'listing env vars')) as {
        envVar?: { key?: unknown; value?: unknown };
        cursor?: unknown;
      }[];
      if (!Array.isArray(rows))
        throw new UnavailableError('Render answered listing env vars with something other than a list');
      for (const row of rows) {
        if (typeof row.envVar?.key === 'string') yield { key: row.envVar.key, value: String(row.envVar.value ?? '') };
      }
      const last = rows[rows.length - 1];
      if (rows.length < 100 || typeof last?.cursor !== 'string') return;
      cursor = last.cursor;
    }
  }

  /** close writes what is pending, then refuses further writes. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** drain writes pending keys one at a time, oldest first, never sooner than minIntervalMs after the last write. */
  private async drain(): Promise<void> {
    for (let next = this.pending.entries().next(); !next.done; next = this.pending.entries().next()) {
      const [key, entry] = next.value;
      try {
        const written = await withRetry(
          async () => {
            const wait = this.lastWriteAt + this.minIntervalMs - Date.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            const value = entry.value;
            this.lastWriteAt = Date.now();
            await this.write(key, value);
            return value;
          },
          { ...this.retry, what: `Render writing ${key}` },
        );
        this.pending.delete(key);
        if (entry.value === written) {
          for (const w of entry.waiters) w.resolve();
        } else {
          // A newer value arrived during the write: it goes to the back of the line, with its waiters.
          this.pending.set(key, entry);
        }
      } catch (err) {
        this.pending.delete(key);
        for (const w of entry.waiters) w.reject(err);
      }
    }
  }

  private async write(key: string, value: string): Promise<void> {
    const what = `writing ${key}`;
    const res = await this.request('PUT', `/env-vars/${encodeURIComponent(key)}`, what, JSON.stringify({ value }));
    if (res.status === 404) throw this.noService(res);
    if (!res.ok) throw await this.failure(res, what);
    await res.arrayBuffer().catch(() => undefined);
    this.serviceConfirmed = true;
  }

  /** confirmService tells a missing variable (fine) from a missing service (ConfigError) after a 404. */
  private async confirmService(): Promise<void> {
    if (this.serviceConfirmed) return;
    const res = await this.request('GET', '/env-vars?limit=1', 'checking the service');
    if (res.status === 404) throw this.noService(res);
    if (!res.ok) throw await this.failure(res, 'checking the service');
    await res.arrayBuffer().catch(() => undefined);
    this.serviceConfirmed = true;
  }

  private noService(res: Response): ConfigError {
    void res.arrayBuffer().catch(() => undefined);
    return new ConfigError(`Render has no service ${this.serviceId} visible to this API key (HTTP 404)`, {
      hint: 'Check RENDER_SERVICE_ID (srv-..., from the service URL) and that RENDER_API_KEY belongs to the workspace that owns it',
    });
  }

  private async request(method: string, path: string, what: string, body?: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = `${this.apiUrl}/services/${encodeURIComponent(this.serviceId)}${path}`;
    try {
      return await this.fetch(url, {
        method,
        headers,
        body: body ?? null,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError')
        throw new UnavailableError(`Render ${what}: no answer within ${this.timeoutMs} ms`);
      const why = this.scrub(e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
      throw new UnavailableError(`Render ${what}: network error (${why})`, {
        hint: 'Check the network and https://status.render.com',
      });
    }
  }

  private async json(res: Response, what: string): Promise<unknown> {
    try {
      return (await res.json()) as unknown;
    } catch {
      throw new UnavailableError(`Render answered ${what} with something that is not JSON`);
    }
  }

  private async failure(res: Response, what: string): Promise<PawledgerError> {
    const text = (await res.text().catch(() => '')).slice(0, 1000);
    let message: string | undefined;
    try {
      const body = JSON.parse(text) as { message?: unknown; id?: unknown };
      message = typeof body.message === 'string' ? body.message : typeof body.id === 'string' ? body.id : undefined;
    } catch {
      message = text.trim() || undefined;
    }
    const tail = this.scrub(`HTTP ${res.status}${message ? `: ${message.slice(0, 200)}` : ''}`);
    if (res.status === 401) {
      return new ConfigError(`Render rejected RENDER_API_KEY while ${what} (${tail})`, {
        hint: 'Check RENDER_API_KEY: create a key in the Render dashboard (Account Settings, API Keys)',
      });
    }
    if (res.status === 403) {
      return new ConfigError(`Render refused ${what} (${tail})`, {
        hint: 'Check that RENDER_API_KEY belongs to the workspace that owns RENDER_SERVICE_ID',
      });
    }
    if (res.status === 404) return new NotFoundError(`Render found nothing while ${what} (${tail})`);
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      return new RetryAfterError(`Render ${what} failed (${tail})`, {
        retryAfterMs: retryAfterFromHeaders(res.headers),
      });
    }
    return new ValidationError(`Render refused ${what} (${tail})`);
  }

  private scrub(text: string): string {
    return this.apiKey.length >= 4 ? text.split(this.apiKey).join('***') : text;
  }
}

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new ValidationError(`${JSON.stringify(key)} is not an environment variable name`, 'key');
}
