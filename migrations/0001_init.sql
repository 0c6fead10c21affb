-- pawledger schema 1: ledgers, their branches, sealed blocks stored once, and backup records pointing into them.

CREATE TABLE IF NOT EXISTS ledgers (
  id           serial PRIMARY KEY,
  genesis_hash text NOT NULL UNIQUE,           -- the ledger's id: the hash of its block 0 (hex)
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- A branch is a run of heights. Restoring an older backup and saving after it starts a new branch that forks from
-- its parent at first_height; blocks of every branch are kept until retention collects them.
CREATE TABLE IF NOT EXISTS ledger_branches (
  ledger_id     integer NOT NULL REFERENCES ledgers (id),
  branch        integer NOT NULL,
  parent_branch integer,
  first_height  bigint NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ledger_id, branch)
);

-- Each sealed block once. height and hash are in the clear (they are bound into the seal); the contents are not.
CREATE TABLE IF NOT EXISTS ledger_blocks (
  ledger_id integer NOT NULL,
  branch    integer NOT NULL,
  height    bigint NOT NULL,
  hash      bytea NOT NULL,
  sealed    bytea NOT NULL,
  PRIMARY KEY (ledger_id, branch, height)
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_blocks_hash ON ledger_blocks (ledger_id, hash);

-- The seed's table, kept with its columns. A record is a pointer: the chain up to height, ending at head_hash.
-- backup_data holds the record's seal (base64): a MAC over every column below, so an edited row fails to verify.
CREATE TABLE IF NOT EXISTS blockchain_backups (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL,
  filename    text NOT NULL,
  backup_data text NOT NULL,
  created_at  timestamptz NOT NULL,
  created_by  integer,
  ledger_id   integer NOT NULL REFERENCES ledgers (id),
  height      bigint NOT NULL,
  head_hash   text NOT NULL,
  block_count bigint NOT NULL,
  size_bytes  bigint NOT NULL,
  kind        text NOT NULL DEFAULT 'auto',
  protected   boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS blockchain_backups_ledger ON blockchain_backups (ledger_id, id DESC);
