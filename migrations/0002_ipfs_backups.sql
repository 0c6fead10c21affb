-- pawledger schema 2: where the IPFS tier's manifests are remembered (the newest is the restore handle).

CREATE TABLE IF NOT EXISTS ipfs_backups (
  id          bigserial PRIMARY KEY,
  cid         text NOT NULL,
  ledger_id   integer NOT NULL REFERENCES ledgers (id),
  name        text NOT NULL,
  kind        text NOT NULL DEFAULT 'auto',
  backup_data text NOT NULL,                   -- the record's seal (base64), as in blockchain_backups
  created_at  timestamptz NOT NULL,
  created_by  integer,
  height      bigint NOT NULL,
  head_hash   text NOT NULL,
  size_bytes  bigint NOT NULL,
  protected   boolean NOT NULL DEFAULT false,
  is_head     boolean NOT NULL DEFAULT true     -- false for a manifest of an older point (a named backup of a prefix)
);
CREATE INDEX IF NOT EXISTS ipfs_backups_ledger ON ipfs_backups (ledger_id, id DESC);
