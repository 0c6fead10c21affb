import type { Queryable, SqlClient } from '../db/client.js';
import { holdsFence } from '../db/lease.js';
import { NotWriterError } from '../errors.js';

/**
 * LeaseFence is PostgresTier's side of the writer lease (src/db/lease.ts): the token its writes carry, the refusal
 * without one, and the check that opens a fenced transaction. A fence that finds the token gone forgets it, so the
 * instance writes nothing more until it takes the lease again.
 */
export class LeaseFence {
  #token: string | null = null;

  constructor(
    readonly lease: string,
    private readonly label: string,
  ) {}

  /** setToken sets the token writes carry (null: this instance holds no lease). */
  setToken(token: string | null): void {
    this.#token = token;
  }

  /** params are a write's fence parameters [lease, token]; without a token the write is refused here (NotWriterError). */
  params(): [string, string] {
    if (this.#token === null) throw new NotWriterError(`this instance does not hold the writer lease of ${this.label}`);
    return [this.lease, this.#token];
  }

  /** lost is the error of a write the database refused: another instance took the lease. It forgets the token. */
  lost(): NotWriterError {
    this.#token = null;
    return new NotWriterError(
      `another instance took the writer lease of ${this.label}: this write was refused and nothing was written`,
      { lost: true },
    );
  }

  // A fenced transaction's first statement: it holds the lease row FOR SHARE until commit, or throws lost().
  async #check(tx: Queryable, params: [string, string]): Promise<void> {
    if (!(await holdsFence(tx, params[0], params[1]))) throw this.lost();
  }

  /** writer is `db` with every statement and transaction run behind the fence. */
  writer(db: SqlClient): SqlClient {
    const fenced = async <T>(fn: (q: Queryable) => Promise<T>): Promise<T> => {
      const params = this.params();
      return db.transaction(async (tx) => {
        await this.#check(tx, params);
        return fn(tx);
      });
    };
    return {
      label: db.label,
      query: (sql, params) => fenced((tx) => tx.query(sql, params)),
      transaction: fenced,
      probe: () => db.probe(),
      close: () => db.close(),
    };
  }
}
