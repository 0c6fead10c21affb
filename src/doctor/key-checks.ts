import type { KeyCounts } from '../tiers/tier.js';
import type { Check } from './checks.js';

/** PlaceKeys is one place's sealed objects by key id (null: it could not be counted). */
export interface PlaceKeys {
  name: string;
  keys: KeyCounts | null;
}

const KEY_ID = /^[0-9a-f]{8}$/;

/**
 * keyChecks is the doctor's view of the keyring against what each place holds: per place, its objects by key id (ok
 * when all are under the active key; warn while some wait for rotation under a previous key; fail when some are under
 * a key the keyring lacks, which nothing here can open), then one line per previous key saying whether anything still
 * needs it or it can be dropped from LEDGER_PREVIOUS_KEYS.
 */
export function keyChecks(places: readonly PlaceKeys[], active: string, previous: readonly string[]): Check[] {
  const out: Check[] = [];
  for (const p of places) {
    if (!p.keys) continue;
    const entries = Object.entries(p.keys).filter(([id, n]) => KEY_ID.test(id) && n > 0);
    const detail = entries.length
      ? entries.map(([id, n]) => `${n} under ${id}${id === active ? ' (active)' : ''}`).join(', ')
      : 'no sealed objects';
    const unknown = entries.filter(([id]) => id !== active && !previous.includes(id));
    const waiting = entries.filter(([id]) => previous.includes(id));
    const name = `${p.name} keys`;
    if (unknown.length)
      out.push({
        name,
        status: 'fail',
        detail: `${detail}: key ${unknown.map(([id]) => id).join(', ')} is not in the keyring, so those objects do not open`,
        fix: `Add the key with id ${unknown[0]![0]} to LEDGER_PREVIOUS_KEYS`,
      });
    else if (waiting.length)
      out.push({
        name,
        status: 'warn',
        detail: `${detail}: ${waiting.reduce((n, [, c]) => n + c, 0)} still under a previous key`,
        fix: 'Run `pawledger rotate-key` (serve re-seals them in the background)',
      });
    else out.push({ name, status: 'ok', detail });
  }
  const counted = places.length > 0 && places.every((p) => p.keys !== null);
  for (const id of previous) {
    const holders = places.filter((p) => (p.keys?.[id] ?? 0) > 0).map((p) => p.name);
    if (holders.length)
      out.push({
        name: `previous key ${id}`,
        status: 'ok',
        detail: `still needed: ${holders.join(', ')} hold objects under it; keep it in LEDGER_PREVIOUS_KEYS until the rotation is done`,
      });
    else if (counted)
      out.push({
        name: `previous key ${id}`,
        status: 'warn',
        detail: 'no object in any tier needs it any more',
        fix: `Drop key ${id} from LEDGER_PREVIOUS_KEYS`,
      });
  }
  return out;
}
