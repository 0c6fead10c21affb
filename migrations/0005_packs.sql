-- pawledger schema 5: packs and checkpoints (docs/FORMAT.md, "Database"). Settled blocks are compacted into packs: one
-- sealed object per run of blocks, read whole. A branch reads each of its heights either from a loose row of
-- ledger_blocks or from a pack named in ledger_pack_reads, never both: putPack inserts the pack and its reads and
-- deletes the loose rows they replace in one transaction.

-- A pack as putPack received it: the blocks from_height..to_height, their hashes in the clear (32 bytes each, in
-- order, bound by the seal), and the sealed bodies. Stored EXTERNAL: sealed bytes do not compress, so PostgreSQL
-- should not try.
CREATE TABLE IF NOT EXISTS ledger_packs (
  id          bigserial PRIMARY KEY,
  ledger_id   integer NOT NULL REFERENCES ledgers (id),
  from_height bigint NOT NULL,
  to_height   bigint NOT NULL,
  last_hash   bytea NOT NULL,
  hashes      bytea NOT NULL,
  sealed      bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_packs_span ON ledger_packs (ledger_id, to_height, last_hash, from_height);
ALTER TABLE ledger_packs ALTER COLUMN hashes SET STORAGE EXTERNAL;
ALTER TABLE ledger_packs ALTER COLUMN sealed SET STORAGE EXTERNAL;

-- What a branch reads from a pack: its heights from_height..to_height, a run of the pack. A pack belongs to the chain
-- it was written on: a pack that also holds blocks another branch already reads (a fork's pack sharing the prefix of
-- main's) is read only for the heights named here.
CREATE TABLE IF NOT EXISTS ledger_pack_reads (
  ledger_id   integer NOT NULL,
  branch      integer NOT NULL,
  from_height bigint NOT NULL,
  to_height   bigint NOT NULL,
  pack_id     bigint NOT NULL REFERENCES ledger_packs (id),
  PRIMARY KEY (ledger_id, branch, from_height)
);
CREATE INDEX IF NOT EXISTS ledger_pack_reads_height ON ledger_pack_reads (ledger_id, to_height);
CREATE INDEX IF NOT EXISTS ledger_pack_reads_pack ON ledger_pack_reads (pack_id);

-- A sealed checkpoint of the world state after block (height, hash), one row per part, in order. Its chain is the
-- chain of its block; putCheckpoint keeps the newest two of a chain.
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
  ledger_id  integer NOT NULL REFERENCES ledgers (id),
  height     bigint NOT NULL,
  hash       bytea NOT NULL,
  part       integer NOT NULL,
  body       bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ledger_id, height, hash, part)
);
ALTER TABLE ledger_checkpoints ALTER COLUMN body SET STORAGE EXTERNAL;

-- migrate.ts runs every file again when the tables of schema 1 were dropped by hand: rows left here would then belong
-- to no ledger, or to a new ledger given the same id. They go (on a first run there are none).
DELETE FROM ledger_pack_reads WHERE ledger_id NOT IN (SELECT id FROM ledgers);
DELETE FROM ledger_checkpoints WHERE ledger_id NOT IN (SELECT id FROM ledgers);
DELETE FROM ledger_packs WHERE ledger_id NOT IN (SELECT id FROM ledgers);
