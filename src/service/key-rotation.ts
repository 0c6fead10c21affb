import type { Sealer } from '../crypto/seal.js';
import { UnavailableError } from '../errors.js';
import type { Replicator } from '../engine/replicator.js';
import { Rotator, type RotationTarget } from '../engine/rotation.js';
import type { Logger } from '../log.js';
import type { LocalStore } from '../store/local-store.js';

/**
 * keyRotation builds the ledger's Rotator (engine/rotation.ts) over the places that hold sealed objects: the local
 * store first, then every tier that can re-seal, in restore priority order. A tier that lags or does not answer is
 * skipped and tried again later, so a rotation never waits on a tier that does not answer. The local store and a
 * sync tier (sent to inside each save) take their steps in the serial section, between saves, and a sync tier only
 * while it is level (checked there, where no save is in flight); an async tier (caught up in the background) takes part while it answers, even a few saves
 * behind, and takes its steps under its replicator's hold(), which keeps its catch-ups out without holding up saves.
 */
export function keyRotation(deps: {
  sealer: Sealer;
  store: LocalStore;
  replicators: readonly Replicator[];
  ledgerId: () => string;
  writable: () => boolean;
  serial: <T>(fn: () => Promise<T>) => Promise<T>;
  log: Logger;
  batch: number;
  retryMs: number;
}): Rotator {
  const { sealer, store } = deps;
  const local: RotationTarget = {
    name: 'local',
    notReady: () => (deps.writable() ? null : 'this instance does not write the ledger now'),
    keyCounts: () => store.keyCounts(),
    reseal: (limit) => deps.serial(() => store.reseal(sealer, limit)),
  };
  const tiers = (): RotationTarget[] =>
    deps.replicators.flatMap((r): RotationTarget[] => {
      const { tier } = r;
      if (!tier.reseal || !tier.keyCounts) return [];
      const step = (limit: number) => tier.reseal!(deps.ledgerId(), sealer, limit);
      const sync = r.entry.role !== 'async';
      return [
        {
          name: r.entry.name,
          notReady: () =>
            !deps.writable()
              ? 'this instance does not write the ledger now'
              : r.state !== 'ok' || !r.answering
                ? `the tier is behind the ledger or does not answer${r.lastError ? ` (${r.lastError})` : ''}`
                : null,
          keyCounts: () => tier.keyCounts!(deps.ledgerId()),
          // Whether a sync tier is level is only settled in the serial section: outside it a save may be in flight.
          reseal: sync
            ? (limit) =>
                deps.serial(() => {
                  if (!r.level)
                    throw new UnavailableError(`${r.entry.name} is behind the ledger; it is tried again later`);
                  return step(limit);
                })
            : (limit) => r.hold(() => step(limit)),
        },
      ];
    });
  return new Rotator(
    {
      log: deps.log,
      activeKeyId: sealer.keyId,
      previousKeyIds: sealer.previousKeyIds,
      targets: () => [local, ...tiers()],
    },
    { batch: deps.batch, retryMs: deps.retryMs },
  );
}
