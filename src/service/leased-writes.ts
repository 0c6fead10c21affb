import type { Replicator } from '../engine/replicator.js';
import { followDatabase } from '../engine/follow.js';
import { describeError, NotWriterError, PawledgerError, TimeoutError, UnavailableError } from '../errors.js';
import type { StoredBlock } from '../crypto/stored-block.js';
import type { NewBackup } from '../crypto/records.js';
import type { LedgerCore } from '../engine/core.js';
import type { LeaseKeeper } from './lease-keeper.js';

/**
 * LeasedWrites is the Ledger's save path with the writer lease on (LEDGER_LEASE): a save goes to the database first,
 * fenced by the lease, and is acknowledged only once the database holds it, so a standby that takes over never
 * misses an acknowledged write. It also follows the database: a standby's way of keeping up, and the writer's way
 * of picking up a save whose commit reply was lost before it saves again.
 */
export class LeasedWrites {
  #unsentLogged = false;

  constructor(
    private readonly core: LedgerCore,
    readonly keeper: LeaseKeeper,
    readonly replicator: Replicator,
  ) {}

  /** beforeSave refuses a save on a standby, and after a failed commit takes what the database holds first. */
  async beforeSave(): Promise<void> {
    if (this.keeper.role !== 'writer') throw this.keeper.refusal();
    const r = this.replicator;
    if (r.state === 'ok') return;
    // A database that stopped answering is asked once (one probe shared by every save meanwhile, within the deadline)
    // before a save is refused: it never waits longer than that, and goes through as soon as the database is back.
    if (!r.answering && !(await r.probeNow())) {
      throw new UnavailableError(`the database is not answering (${r.lastError}); the save was not made`, {
        hint: 'Retry after Retry-After: saves resume as soon as a probe finds the database answering',
      });
    }
    await this.follow();
    if (!(await r.catchUp())) throw databaseFailure(r.lastFailure);
  }

  /**
   * commit sends a save's blocks and record to the database. A refusal by the fence makes this instance a standby. A
   * failure after which the database may still have committed is settled by asking it: the save stands if it holds
   * the block; if the database cannot be asked, the error says the save may have been made.
   */
  async commit(parentHash: string, sealed: StoredBlock[], record: NewBackup): Promise<void> {
    const r = this.replicator;
    try {
      await r.commit(parentHash, sealed, record);
    } catch (err) {
      if (err instanceof NotWriterError) {
        if (err.lost) this.keeper.lost();
        throw err;
      }
      const last = sealed.at(-1)!;
      // A reply lost after COMMIT (a reset connection) is settled by asking; a database that stopped answering
      // cannot be asked, and would make the save wait again.
      const held =
        err instanceof TimeoutError
          ? null
          : await r.tier.hasBlock(record.ledgerId, last.height, last.hash).catch(() => null);
      if (held === null) {
        throw new UnavailableError(
          `the database did not confirm the save (${describeError(err)}), and could not be asked whether it took it: it may have been made`,
          {
            hint: 'Read the property back before retrying; the next save picks up whatever the database holds',
            cause: err,
          },
        );
      }
      if (!held) throw databaseFailure(err);
      this.core.log.warn(
        { height: last.height, err: describeError(err) },
        `The database's reply to block ${last.height} was lost, but it holds the block: the save stands`,
      );
      r.noteLevel(last.height);
    }
  }

  /** follow brings the running chain level with the database's newest backup (followDatabase); inside the serial section. */
  async follow(): Promise<void> {
    const r = this.replicator;
    const followed = await followDatabase(this.core, r.tier);
    const head = this.core.chain().head;
    if (followed.record && followed.record.height === head.index && followed.record.headHash === head.hash)
      r.noteBackup(followed.record);
    if (followed.unsent && !this.#unsentLogged) {
      this.core.log.warn(
        { height: head.index },
        'The local store holds blocks the database lacks (saved before the writer lease was on); they are kept, and sent when this instance takes the lease',
      );
    }
    this.#unsentLogged = followed.unsent;
  }
}

function databaseFailure(err: unknown): PawledgerError {
  if (err instanceof PawledgerError) return err;
  return new UnavailableError(`the database did not take the save, so it was not made: ${String(err)}`, { cause: err });
}
