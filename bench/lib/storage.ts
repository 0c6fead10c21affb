import type pg from 'pg';

/** Storage is what a pawledger database holds after a number of saves, against the chain's own encrypted size. */
export interface Storage {
  /**
   * blocks is the number of blocks stored, loose rows and packed heights (genesis included); saves = blocks - 1 when
   * every block came from one save.
   */
  blocks: number;
  /** records is the number of backup records (blockchain_backups rows). */
  records: number;
  /** ipfsRecords is the number of ipfs_backups rows (one per IPFS upload, the manifests' history). */
  ipfsRecords: number;
  /** chainBytes is the loose part of the chain's encrypted size: the sum of the sealed lengths of ledger_blocks' rows. */
  chainBytes: number;
  /**
   * packBytes is the packed part: the sum of the sealed lengths of the packs the chain reads (ledger_pack_reads), as a
   * compacting ledger moves settled blocks into packs. chainBytes + packBytes is the sealed chain. Absent in reports
   * saved before it was measured.
   */
  packBytes?: number;
  /** tables maps each table to pg_total_relation_size: heap, indexes, TOAST (and its index), free space map, visibility map. */
  tables: Record<string, number>;
  total: number;
}

/** sealedChainBytes is the chain's own encrypted size: its loose sealed blocks and the sealed packs it reads. */
export function sealedChainBytes(s: Storage): number {
  return s.chainBytes + (s.packBytes ?? 0);
}

/** Tables the benchmarks themselves create in the database; they are not pawledger's and are left out. */
const BENCH_TABLES = ['floor_commit', 'naive_backups'];

/** measureStorage reads the sizes of pawledger's tables in the database `client` is connected to. */
export async function measureStorage(client: pg.Client): Promise<Storage> {
  const sizes = await client.query<{ name: string; bytes: string }>(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid)::text AS bytes
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
       AND NOT (c.relname = ANY($1))
     ORDER BY pg_total_relation_size(c.oid) DESC`,
    [BENCH_TABLES],
  );
  const counts = await client.query<{ blocks: string; chain: string; packs: string; records: string; ipfs: string }>(
    `SELECT ((SELECT count(*) FROM ledger_blocks)
              + (SELECT coalesce(sum(to_height - from_height + 1), 0) FROM ledger_pack_reads))::text AS blocks,
            (SELECT coalesce(sum(octet_length(sealed)), 0) FROM ledger_blocks)::text AS chain,
            (SELECT coalesce(sum(octet_length(p.sealed)), 0) FROM ledger_packs p
              WHERE p.id IN (SELECT pack_id FROM ledger_pack_reads))::text AS packs,
            (SELECT count(*) FROM blockchain_backups)::text AS records,
            (SELECT count(*) FROM ipfs_backups)::text AS ipfs`,
  );
  const c = counts.rows[0]!;
  const tables = Object.fromEntries(sizes.rows.map((r) => [r.name, Number(r.bytes)]));
  return {
    blocks: Number(c.blocks),
    records: Number(c.records),
    ipfsRecords: Number(c.ipfs),
    chainBytes: Number(c.chain),
    packBytes: Number(c.packs),
    tables,
    total: Object.values(tables).reduce((a, b) => a + b, 0),
  };
}
