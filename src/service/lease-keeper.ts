import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { WriterLease, type LeaseHolder } from '../db/lease.js';
import { describeError, NotWriterError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PostgresTier } from '../tiers/postgres.js';

/** WriterRole is what an instance may do: append (writer) or serve reads and follow the writer (standby). */
export type WriterRole = 'writer' | 'standby';

/** WriterStatus says who writes the ledger, as status, GET /status and doctor show it. */
export interface WriterStatus {
  /** mode is 'lease' (the database's writer lease, LEDGER_LEASE) or 'lock' (the data folder's LOCK file only). */
  mode: 'lease' | 'lock';
  role: WriterRole;
  /** instance names this process (host:pid:nonce). */
  instance: string;
  /** holder names the instance that holds the writer lease (this one in lock mode), as last seen; null if none. */
  holder: string | null;
  /** since is when the holder took it (ISO 8601). */
  since: string | null;
  /** expiresAt is when the holder's lease runs out unless renewed (lease mode). */
  expiresAt: string | null;
}

/** LeaseHooks are what the keeper asks of the ledger. */
export interface LeaseHooks {
  /** serial runs fn alone in the ledger's serial section (no save beside it). */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** follow brings the running chain level with the database's newest backup (run inside serial). */
  follow(): Promise<void>;
  /** promoted runs (inside serial) after this instance took the lease and caught up: heal the tiers, start uploads. */
  promoted(): Promise<void>;
}

/**
 * lockWriterStatus is the WriterStatus without the lease: the process holding the data folder's LOCK writes (this
 * one when `locked`); a read-only ledger (the CLI beside a server) writes nothing and does not know the holder.
 */
export function lockWriterStatus(locked: boolean, since: Date): WriterStatus {
  const instance = `${hostname()}:${process.pid}`;
  if (!locked) return { mode: 'lock', role: 'standby', instance, holder: null, since: null, expiresAt: null };
  return { mode: 'lock', role: 'writer', instance, holder: instance, since: since.toISOString(), expiresAt: null };
}

/** instanceName names this process in the lease row and in status: the host (a Render instance id), pid and a nonce. */
export function instanceName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * LeaseKeeper holds this instance's side of the writer lease. As writer it renews the lease every third of its TTL;
 * a renewal that finds the token gone (another instance took an expired lease) makes it a standby. As standby it
 * polls every LEDGER_FOLLOW_MS: it tries to take the lease, follows the database's newest blocks either way, and
 * only once caught up under a fresh token becomes the writer. Safety does not rest on these timers: the database
 * refuses any append whose token is not current (PostgresTier's fence), whatever this process believes.
 */
export class LeaseKeeper {
  role: WriterRole = 'standby';
  readonly instance = instanceName();
  readonly #lease: WriterLease;
  #token: string | null = null;
  #seen: LeaseHolder | null = null;
  #hooks: LeaseHooks | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #complained = false;
  #following = true;
  // A renewal in flight: release() waits for it, or it could land after the release and extend the lease again.
  #renewing: Promise<Date | null> | null = null;

  constructor(
    private readonly tier: PostgresTier,
    private readonly options: { ttlMs: number; followMs: number; log: Logger },
  ) {
    this.#lease = new WriterLease(() => tier.db, tier.leaseName!, options.ttlMs);
  }

  /** claim tries once to take the lease, before the restore. An unreachable database leaves this instance a standby. */
  async claim(): Promise<void> {
    try {
      await this.tier.init();
      await this.#tryTake();
    } catch (err) {
      this.options.log.warn(
        { err: describeError(err) },
        `Writer lease: the database is unreachable (${describeError(err)}); starting as a standby that serves reads and retries`,
      );
    }
    if (this.role === 'writer') {
      this.options.log.info(
        { instance: this.instance, token: this.#token },
        `Writer lease taken (token ${this.#token}): this instance is the ledger's only writer`,
      );
      // Renew from now on: a restore that outlasts the TTL must not lose the lease while the ledger opens.
      this.#schedule();
    } else if (this.#seen) {
      this.options.log.info(
        { holder: this.#seen.holder, since: this.#seen.acquiredAt.toISOString() },
        `Writer lease held by ${this.#seen.holder} since ${this.#seen.acquiredAt.toISOString()}: starting as a standby (reads served, writes answer 503 until it is released)`,
      );
    }
  }

  // Take the lease if it is free; the role changes to writer only here at open, later only after a follow.
  async #tryTake(): Promise<boolean> {
    const got = await this.#lease.acquire(this.instance);
    if (got) {
      this.#token = got.token;
      this.#seen = got;
      this.tier.setLeaseToken(got.token);
      if (!this.#hooks) this.role = 'writer';
      return true;
    }
    this.#seen = await this.#lease.current();
    return false;
  }

  /** start runs the renew (writer) and follow-and-take (standby) loop until stop(). */
  start(hooks: LeaseHooks): void {
    this.#hooks = hooks;
    if (!this.#timer) this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const ms = this.role === 'writer' ? Math.max(100, Math.floor(this.options.ttlMs / 3)) : this.options.followMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#tick().finally(() => this.#schedule());
    }, ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      if (this.role === 'writer') {
        this.#renewing = this.#lease.renew(this.#token!);
        const expires = await this.#renewing.finally(() => (this.#renewing = null));
        if (expires && this.#seen) this.#seen.expiresAt = expires;
        else if (!expires) this.lost();
      } else if (this.#hooks) {
        await this.#hooks.serial(() => this.#standbyStep());
      }
      this.#complained = false;
    } catch (err) {
      if (!this.#complained) {
        this.options.log.warn(
          { role: this.role, err: describeError(err) },
          `Writer lease: the database is unreachable (${describeError(err)}); ${this.role === 'writer' ? 'writes fail until it is back, and the lease stays ours unless another instance takes it after it expires' : 'retrying'}`,
        );
      }
      this.#complained = true;
    }
  }

  async #standbyStep(): Promise<void> {
    if (this.#stopped || this.#following === false) return;
    if (this.#token === null) await this.#tryTake();
    else if ((await this.#lease.renew(this.#token)) === null) this.#drop();
    try {
      await this.#hooks!.follow();
    } catch (err) {
      // Holding the lease without being able to catch up would keep every instance from writing: give it back.
      const token = this.#token;
      this.#drop();
      if (token !== null) await this.#lease.release(token).catch(() => {});
      throw err;
    }
    if (this.#token === null || this.#stopped || !this.#following) return;
    this.role = 'writer';
    this.options.log.info(
      { instance: this.instance, token: this.#token },
      `Writer lease taken over (token ${this.#token}) after catching up from the database: this instance now accepts writes`,
    );
    await this.#hooks!.promoted();
  }

  #drop(): void {
    this.#token = null;
    this.tier.setLeaseToken(null);
  }

  /** lost makes this instance a standby: the lease was taken by another (a renewal or an append found its token gone). */
  lost(): void {
    if (this.role !== 'writer') return;
    this.role = 'standby';
    this.#drop();
    this.options.log.warn(
      { instance: this.instance },
      'Writer lease lost to another instance (this one was paused or cut off past its lease): now a standby; writes answer 503',
    );
    void this.#lease.current().then(
      (h) => (this.#seen = h),
      () => {},
    );
    // Start following now, not at the next renewal: a timer that is waiting is cut short (a running tick reschedules).
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
      this.#schedule();
    }
  }

  /** refusal is the error a write gets on a standby: who holds the lease, and since when. */
  refusal(): NotWriterError {
    const h = this.#seen?.held ? this.#seen : null;
    return new NotWriterError(
      h
        ? `this instance is a standby: ${h.holder} holds the writer lease since ${h.acquiredAt.toISOString()}`
        : 'this instance is a standby: it has not taken the writer lease yet (retrying)',
    );
  }

  status(): WriterStatus {
    const h = this.role === 'writer' || this.#seen?.held ? this.#seen : null;
    return {
      mode: 'lease',
      role: this.role,
      instance: this.instance,
      holder: h?.holder ?? null,
      since: h?.acquiredAt.toISOString() ?? null,
      expiresAt: h?.expiresAt.toISOString() ?? null,
    };
  }

  /** stopFollowing ends a standby's follow-and-take steps (the ledger is closing); a writer keeps renewing. */
  stopFollowing(): void {
    this.#following = false;
  }

  /** stop ends the loop; then release() gives the lease up, so a standby takes over at its next poll. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** release gives the lease up (after the last save) so a standby can take it at once. */
  async release(): Promise<void> {
    this.stop();
    await this.#renewing?.catch(() => null);
    const token = this.#token;
    if (token === null) return;
    this.role = 'standby';
    this.#drop();
    try {
      await this.#lease.release(token);
      this.options.log.info({ token }, `Writer lease released (token ${token}): a standby may take over now`);
    } catch (err) {
      this.options.log.warn(
        { err: describeError(err) },
        `Writer lease could not be released (${describeError(err)}); a standby takes over once it expires`,
      );
    }
  }
}
