/**
 * StoredBlock is a sealed block as every tier keeps it: its height and hash in the clear (they index it and are
 * bound into its seal), its contents sealed. Tiers see nothing else of a block.
 */
export interface StoredBlock {
  height: number;
  hash: string;
  sealed: Buffer;
}
