-- pawledger schema 7: each backup record carries the chain accumulator's root at its head (hex; NULL for records
-- made before roots existed, or while the accumulator was rebuilt), a public commitment to the whole chain that
-- property proofs lead to. The record's seal covers it when it is present.

ALTER TABLE blockchain_backups ADD COLUMN IF NOT EXISTS chain_root text;
ALTER TABLE ipfs_backups ADD COLUMN IF NOT EXISTS chain_root text;
