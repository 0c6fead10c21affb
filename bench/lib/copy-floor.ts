import { spawnSync } from 'node:child_process';
import { openPack } from '../../src/crypto/packs.js';
import { closeSync, openSync } from 'node:fs';
import type { Sealer } from '../../src/crypto/seal.js';
import type { BackupTier } from '../../src/tiers/tier.js';
import type { BackupRecord } from '../../src/crypto/records.js';

/**
 * COPY_SQL reads every stored block as a restore needs it, in chain order: the packs (first height, hashes, sealed
 * bytes) and the loose blocks (height, hash, sealed bytes).
 */
const COPY_SQL = `COPY (SELECT ledger_id, from_height AS height, hashes AS hash, sealed FROM ledger_packs
  UNION ALL SELECT ledger_id, height, hash, sealed FROM ledger_blocks ORDER BY 1, 2) TO STDOUT (FORMAT binary)`;

/**
 * copyFloorMs times `psql -c "COPY (SELECT ... FROM ledger_packs UNION ALL ... ledger_blocks ...) TO STDOUT (FORMAT
 * binary)"` with its output
 * sent to /dev/null, `runs` times: the database's own cost of handing over every stored block (psql's own start
 * included). It returns [] when psql is not installed.
 */
export function copyFloorMs(url: string, runs: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const devNull = openSync('/dev/null', 'w');
    try {
      const t = performance.now();
      const p = spawnSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', COPY_SQL], {
        stdio: ['ignore', devNull, 'pipe'],
      });
      const elapsed = performance.now() - t;
      if (p.error && (p.error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      if (p.status !== 0) throw new Error(`psql COPY failed: ${p.stderr?.toString() ?? p.error}`);
      out.push(elapsed);
    } finally {
      closeSync(devNull);
    }
  }
  return out;
}

/**
 * decryptFloorMs reads the record's chain from the tier once, a page at a time, and times decrypting every block
 * (Sealer.open with the block's context: AES-256-GCM and its checks, nothing else) `runs` times over: each run's
 * total is the time to decrypt every block once. Reading is not timed. Memory stays at one page.
 */
export async function decryptFloorMs(
  tier: BackupTier,
  record: BackupRecord,
  sealer: Sealer,
  runs: number,
): Promise<number[]> {
  const totals = Array.from({ length: runs }, () => 0);
  for await (const page of tier.readChainPages(record)) {
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      if ('pack' in page) openPack(sealer, record.ledgerId, page.pack, 'bench');
      else
        for (const b of page.blocks)
          sealer.open({ ledgerId: record.ledgerId, kind: 'block', height: b.height, hash: b.hash }, b.sealed);
      totals[r]! += performance.now() - t;
    }
  }
  return totals;
}
