import type { Sealer } from '../crypto/seal.js';
import type { Replicator } from '../engine/replicator.js';
import { Rotator, type RotationTarget } from '../engine/rotation.js';
import type { Logger } from '../log.js';
import type { LocalStore } from '../store/local-store.js';

/**
 * keyRotation builds the ledger's Rotator (engine/rotation.ts) over the places that hold sealed objects: the local
 * store first, then every tier that can re-seal, in restore priority order. A tier takes part only while it is level
 * with the ledger (a lagging or silent tier is skipped and tried again later, so a rotation never waits on a tier
 * that does not answer), and each step runs in the serial section, between saves.
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
    ready: () => deps.writable(),
    keyCounts: () => store.keyCounts(),
    reseal: (limit) => store.reseal(sealer, limit),
  };
  const tiers = (): RotationTarget[] =>
    deps.replicators.flatMap((r): RotationTarget[] => {
      const { tier } = r;
      if (!tier.reseal || !tier.keyCounts) return [];
      return [
        {
          name: r.entry.name,
          ready: () => deps.writable() && r.level,
          keyCounts: () => tier.keyCounts!(deps.ledgerId()),
          reseal: (limit) => tier.reseal!(deps.ledgerId(), sealer, limit),
        },
      ];
    });
  return new Rotator(
    {
      log: deps.log,
      activeKeyId: sealer.keyId,
      previousKeyIds: sealer.previousKeyIds,
      targets: () => [local, ...tiers()],
      exclusive: deps.serial,
    },
    { batch: deps.batch, retryMs: deps.retryMs },
  );
}
