-- pawledger schema 3: retention on IPFS. A pruned manifest's row stays, marked, until garbage collection has unpinned
-- its packs (the manifest names them) and the manifest itself; then the row goes. Listing ignores marked rows.

ALTER TABLE ipfs_backups ADD COLUMN IF NOT EXISTS pruned_at timestamptz;
CREATE INDEX IF NOT EXISTS ipfs_backups_pruned ON ipfs_backups (ledger_id) WHERE pruned_at IS NOT NULL;
