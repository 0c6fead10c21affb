import { resealBlock, resealCheckpoint, resealPack, resealRecord } from '../crypto/reseal.js';
import type { Sealer } from '../crypto/seal.js';
import type { Queryable, SqlClient } from '../db/client.js';
import { locateSql } from './postgres-locate.js';
import { toBuffer, toRecord } from './postgres-rows.js';
import type { KeyCounts, ResealStep } from './tier.js';

/**
 * Key rotation in PostgresTier (BackupTier.keyCounts and reseal). Every sealed object of a ledger lives in one of four
 * places: loose blocks (ledger_blocks.sealed), packs (ledger_packs.sealed), checkpoint parts (ledger_checkpoints.body:
 * an 8-byte part header, then the sealed object) and backup records (blockchain_backups.backup_data: the seal in
 * base64). The key id is read from each object's header in SQL (crypto/seal.ts: bytes 6..10 after the magic), so
 * neither counting nor picking what to rewrite decrypts anything. Only objects that still take part are seen: packs
 * some branch reads, checkpoints whose block is held (collectGarbage frees the others), every block row and record.
 */

// The 4 bytes of "PWLS", the magic every sealed object starts with.
const MAGIC_SQL = "decode('50574c53', 'hex')";

/**
 * keyIdSql is the key id (8 hex digits) of the sealed object that starts `at` bytes into the bytea expression `col`,
 * or 'unsealed' where there is no sealed object (as crypto/reseal.ts keyIdOf says).
 */
export function keyIdSql(col: string, at = 0): string {
  return `CASE WHEN octet_length(${col}) >= ${at + 38} AND substring(${col} FROM ${at + 1} FOR 4) = ${MAGIC_SQL}
    THEN encode(substring(${col} FROM ${at + 7} FOR 4), 'hex') ELSE 'unsealed' END`;
}

/** Source is one table of sealed objects: its rows of ledger `$1` that take part, and the key id of each. */
interface Source {
  kind: 'block' | 'pack' | 'checkpoint' | 'record';
  from: string;
  keyId: string;
}

const SOURCES: readonly Source[] = [
  { kind: 'block', from: 'ledger_blocks t WHERE t.ledger_id = $1', keyId: keyIdSql('t.sealed') },
  {
    kind: 'pack',
    from: 'ledger_packs t WHERE t.ledger_id = $1 AND EXISTS (SELECT 1 FROM ledger_pack_reads r WHERE r.pack_id = t.id)',
    keyId: keyIdSql('t.sealed'),
  },
  {
    kind: 'checkpoint',
    from: `ledger_checkpoints t WHERE t.ledger_id = $1 AND EXISTS (${locateSql('t.ledger_id', 't.height', 't.hash')})`,
    keyId: keyIdSql('t.body', 8),
  },
  {
    kind: 'record',
    from: 'blockchain_backups t WHERE t.ledger_id = $1',
    keyId: keyIdSql("decode(t.backup_data, 'base64')"),
  },
];

/** countKeys counts the sealed objects of ledger row `lid` by key id, over every table, from the headers alone. */
export async function countKeys(q: Queryable, lid: number): Promise<KeyCounts> {
  const parts = SOURCES.map((s) => `SELECT ${s.keyId} AS k, count(*) AS n FROM ${s.from} GROUP BY 1`);
  const rows = await q.query<{ k: string; n: string }>(
    `SELECT k, sum(n) AS n FROM (${parts.join(' UNION ALL ')}) AS c GROUP BY k ORDER BY k`,
    [lid],
  );
  const counts: KeyCounts = {};
  for (const r of rows) counts[r.k] = Number(r.n);
  return counts;
}

/** Picked is one row found under another key: where it is, and its stored bytes (a record: its row as JSON). */
type Picked = {
  kind: Source['kind'];
  /** a is the block's branch, the pack's id, the checkpoint part's index, the record's id. */
  a: string;
  height: string | null;
  hash: Uint8Array | null;
  body: Uint8Array | null;
  extra: Uint8Array | null;
  rec: string | null;
};

/**
 * LARGE_PER_STEP bounds the packs (about 512 KiB each) and, apart, the checkpoint parts (about 1 MiB) one step
 * holds, whatever its limit: a step keeps each object three times (read, re-sealed, and sent back for the swap).
 */
export const LARGE_PER_STEP = 16;

// One statement reads up to $3 rows under a key other than $2, tables in turn (the Append stops at the limit).
const PICK_SQL = `SELECT * FROM (
  (SELECT 'block' AS kind, t.branch::bigint AS a, t.height AS height, t.hash AS hash, t.sealed AS body,
          NULL::bytea AS extra, NULL::text AS rec
     FROM ${SOURCES[0]!.from} AND ${SOURCES[0]!.keyId} <> $2)
  UNION ALL
  (SELECT 'pack', t.id, t.from_height, t.last_hash, t.sealed, t.hashes, NULL
     FROM ${SOURCES[1]!.from} AND ${SOURCES[1]!.keyId} <> $2 LIMIT least($3, ${LARGE_PER_STEP}))
  UNION ALL
  (SELECT 'checkpoint', t.part::bigint, t.height, t.hash, t.body, NULL, NULL
     FROM ${SOURCES[2]!.from} AND ${SOURCES[2]!.keyId} <> $2 LIMIT least($3, ${LARGE_PER_STEP}))
  UNION ALL
  (SELECT 'record', t.id, t.height, NULL, NULL, NULL,
          json_build_object('id', t.id, 'name', t.name, 'backup_data', t.backup_data, 'created_at', t.created_at,
            'created_by', t.created_by, 'height', t.height, 'head_hash', t.head_hash, 'size_bytes', t.size_bytes,
            'kind', t.kind, 'protected', t.protected, 'chain_root', t.chain_root)::text
     FROM ${SOURCES[3]!.from} AND ${SOURCES[3]!.keyId} <> $2)
) AS picked LIMIT $3`;

/** Rewrite is one row to compare-and-swap, as the columns of its UPDATE: its key columns, the bytes read, the new bytes. */
type Rewrite = unknown[];

/**
 * UPDATES are the compare-and-swap statements, one per table, over a VALUES list of rows typed by `casts`: a row's
 * key columns, then the bytes read and the bytes to write. A row is rewritten only if it still holds the bytes that
 * were read: a repair or a compaction in between wins, and whatever it left under another key is for the next step.
 * (VALUES with one parameter per field, not unnest() of arrays: node-postgres sends a Buffer parameter as binary, an
 * array of them as hex text, which the server then parses; on 5000 blocks, VALUES took half the time.)
 */
const UPDATES: Record<Source['kind'], { casts: string[]; sql: (values: string) => string }> = {
  block: {
    casts: ['integer', 'bigint', 'bytea', 'bytea'],
    sql: (v) => `UPDATE ledger_blocks t SET sealed = v.fresh FROM (VALUES ${v}) AS v (branch, height, old, fresh)
      WHERE t.ledger_id = $1 AND t.branch = v.branch AND t.height = v.height AND t.sealed = v.old RETURNING 1`,
  },
  pack: {
    casts: ['bigint', 'bytea', 'bytea'],
    sql: (v) => `UPDATE ledger_packs t SET sealed = v.fresh FROM (VALUES ${v}) AS v (id, old, fresh)
      WHERE t.ledger_id = $1 AND t.id = v.id AND t.sealed = v.old RETURNING 1`,
  },
  checkpoint: {
    casts: ['bigint', 'bytea', 'integer', 'bytea', 'bytea'],
    sql: (v) => `UPDATE ledger_checkpoints t SET body = v.fresh FROM (VALUES ${v}) AS v (height, hash, part, old, fresh)
      WHERE t.ledger_id = $1 AND t.height = v.height AND t.hash = v.hash AND t.part = v.part AND t.body = v.old
      RETURNING 1`,
  },
  record: {
    casts: ['bigint', 'text', 'text'],
    sql: (v) => `UPDATE blockchain_backups t SET backup_data = v.fresh FROM (VALUES ${v}) AS v (id, old, fresh)
      WHERE t.ledger_id = $1 AND t.id = v.id AND t.backup_data = v.old RETURNING 1`,
  },
};

// Rows per UPDATE statement: at most 5 parameters each, well under PostgreSQL's 65535.
const UPDATE_ROWS = 5000;

/** resealIn re-seals one picked row in memory (opening it first: IntegrityError if it does not open). */
function resealIn(sealer: Sealer, ledgerId: string, p: Picked, label: string): Rewrite {
  const height = Number(p.height);
  switch (p.kind) {
    case 'block': {
      const sealed = toBuffer(p.body);
      const hash = toBuffer(p.hash).toString('hex');
      const again = resealBlock(sealer, ledgerId, { height, hash, sealed }, label);
      return [Number(p.a), height, sealed, again.sealed];
    }
    case 'pack': {
      const sealed = toBuffer(p.body);
      const all = toBuffer(p.extra).toString('hex');
      const hashes = Array.from({ length: all.length / 64 }, (_, i) => all.slice(i * 64, i * 64 + 64));
      const to = height + hashes.length - 1;
      const again = resealPack(sealer, ledgerId, { from: height, to, hashes, sealed }, `pack ${p.a} in ${label}`);
      return [p.a, sealed, again.sealed];
    }
    case 'checkpoint': {
      const body = toBuffer(p.body);
      const hash = toBuffer(p.hash);
      const again = resealCheckpoint(sealer, ledgerId, { height, hash: hash.toString('hex') }, body, label);
      return [height, hash, Number(p.a), body, again];
    }
    case 'record': {
      const row = JSON.parse(p.rec!) as Record<string, unknown>;
      const record = toRecord({ ...row, genesis_hash: ledgerId });
      const again = resealRecord(sealer, record);
      return [p.a, row.backup_data, again.seal.toString('base64')];
    }
  }
}

/**
 * resealStep is one bounded step of a key rotation for ledger row `lid` (BackupTier.reseal): one statement reads up
 * to `limit` objects whose header names a key other than the active one; each is opened and sealed again here (any
 * that does not open throws IntegrityError before anything is written); then one transaction of `writer` (fenced by
 * the writer lease when it is on) swaps them in, each only where the row still holds the bytes read. It returns what
 * it rewrote and what remains under other keys.
 */
export async function resealStep(
  db: SqlClient,
  writer: SqlClient,
  lid: number,
  ledgerId: string,
  sealer: Sealer,
  limit: number,
  label: string,
  /** known is what the previous step of this rotation left (undefined: none yet), to spare a full count per step. */
  known?: number,
): Promise<ResealStep> {
  const n = Math.min(Math.floor(limit), 2 ** 31 - 1);
  const picked = n > 0 ? await db.query<Picked>(PICK_SQL, [lid, sealer.keyId, n]) : [];
  const byKind = new Map<Source['kind'], Rewrite[]>();
  for (const p of picked) {
    const list = byKind.get(p.kind) ?? [];
    list.push(resealIn(sealer, ledgerId, p, label));
    byKind.set(p.kind, list);
  }
  let resealed = 0;
  if (byKind.size > 0) {
    resealed = await writer.transaction(async (tx) => {
      let n = 0;
      for (const [kind, rewrites] of byKind) {
        const { casts, sql } = UPDATES[kind];
        for (let i = 0; i < rewrites.length; i += UPDATE_ROWS) {
          const params: unknown[] = [lid];
          const values = rewrites.slice(i, i + UPDATE_ROWS).map((row) => {
            const first = params.length + 1;
            params.push(...row);
            return `(${casts.map((c, j) => `$${first + j}::${c}`).join(', ')})`;
          });
          n += (await tx.query(sql(values.join(', ')), params)).length;
        }
      }
      return n;
    });
  }
  // A full step says more may be left: what the last count left, less what was rewritten since (at least 1). Counting
  // every table at every step would make a rotation quadratic in the chain; a short step (the pick found all there
  // was) or the first step counts, so the 0 that ends a rotation is always a count.
  if (known !== undefined && picked.length === n && n > 0)
    return { resealed, remaining: Math.max(1, known - resealed) };
  const counts = await countKeys(db, lid);
  const remaining = Object.entries(counts).reduce((n, [k, c]) => (k === sealer.keyId ? n : n + c), 0);
  return { resealed, remaining };
}
