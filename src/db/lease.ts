import type { Queryable, Row, SqlClient } from './client.js';

/** LeaseHolder is who holds (or last held) a writer lease, by the database's clock. */
export interface LeaseHolder {
  holder: string;
  token: string;
  acquiredAt: Date;
  renewedAt: Date;
  expiresAt: Date;
  /** held is false once expires_at has passed (or the holder released it): the next taker gets it. */
  held: boolean;
}

/**
 * WriterLease is a named lease row in pawledger_lease (migration 0004), timed by the database's clock so that hosts
 * with skewed clocks agree. Taking it is one statement that succeeds only when the row is absent or expired, and it
 * increments the fencing token; renewing and releasing name the token, so an instance that lost the lease cannot
 * extend or drop its successor's. The lease alone proves nothing to a paused writer that wakes late: what stops its
 * appends is the fence (fenceSql), checked by the database inside each append.
 */
export class WriterLease {
  constructor(
    private readonly db: () => SqlClient,
    readonly name: string,
    readonly ttlMs: number,
  ) {}

  /** acquire takes the lease for `holder` if nobody holds it; it returns the lease with its new fencing token, or null. */
  async acquire(holder: string): Promise<LeaseHolder | null> {
    const rows = await this.db().query(
      `INSERT INTO pawledger_lease AS l (name, holder, token, acquired_at, renewed_at, expires_at)
       VALUES ($1, $2, 1, now(), now(), now() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = l.token + 1, acquired_at = now(),
         renewed_at = now(), expires_at = EXCLUDED.expires_at
       WHERE l.expires_at <= now()
       RETURNING ${COLUMNS}`,
      [this.name, holder, this.ttlMs],
    );
    return rows[0] ? toHolder(rows[0]) : null;
  }

  /**
   * renew extends the lease held with `token` by the TTL and returns its new expiry, or null when the token is no
   * longer current (another instance took the lease); an expired lease that nobody took is still this token's.
   */
  async renew(token: string): Promise<Date | null> {
    const rows = await this.db().query(
      `UPDATE pawledger_lease SET renewed_at = now(), expires_at = now() + $3 * interval '1 millisecond'
       WHERE name = $1 AND token = $2::bigint RETURNING expires_at`,
      [this.name, token, this.ttlMs],
    );
    return rows[0] ? new Date(rows[0].expires_at as string) : null;
  }

  /** release ends the lease held with `token` now, so a waiting instance can take it at once. */
  async release(token: string): Promise<void> {
    await this.db().query(
      'UPDATE pawledger_lease SET expires_at = now() WHERE name = $1 AND token = $2::bigint AND expires_at > now()',
      [this.name, token],
    );
  }

  /** current reads the lease row: who holds it, or held it last. */
  async current(): Promise<LeaseHolder | null> {
    const rows = await this.db().query(`SELECT ${COLUMNS} FROM pawledger_lease WHERE name = $1`, [this.name]);
    return rows[0] ? toHolder(rows[0]) : null;
  }
}

const COLUMNS = 'holder, token::text AS token, acquired_at, renewed_at, expires_at, expires_at > now() AS held';

function toHolder(r: Row): LeaseHolder {
  return {
    holder: String(r.holder),
    token: String(r.token),
    acquiredAt: new Date(r.acquired_at as string),
    renewedAt: new Date(r.renewed_at as string),
    expiresAt: new Date(r.expires_at as string),
    held: r.held === true,
  };
}

/**
 * fenceSql selects the lease row only while the token is current, and locks it FOR SHARE until the statement's
 * transaction ends: a taker's UPDATE waits for in-flight appends, and an append that starts after the take finds no
 * row (READ COMMITTED re-checks the newest row version) and must write nothing. The arguments are the parameter
 * numbers of the lease name and the token.
 */
export function fenceSql(nameParam: number, tokenParam: number): string {
  return `SELECT 1 FROM pawledger_lease WHERE name = $${nameParam} AND token = $${tokenParam}::bigint FOR SHARE`;
}

/** holdsFence runs the fence as the first statement of a transaction: true when the token is current (and now locked). */
export async function holdsFence(tx: Queryable, name: string, token: string): Promise<boolean> {
  return (await tx.query(fenceSql(1, 2), [name, token])).length > 0;
}
