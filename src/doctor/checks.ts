import { randomBytes } from 'node:crypto';
import { access, constants, readFile, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { checkRecord, type BackupRecord } from '../crypto/records.js';
import { parseKey, parseKeyList } from '../crypto/key.js';
import { Sealer } from '../crypto/seal.js';
import { WriterLease } from '../db/lease.js';
import { latestBackup, verifyBackup } from '../engine/restore.js';
import { describeError, PawledgerError } from '../errors.js';
import type { Logger } from '../log.js';
import { GENERATED_KEY_FILE } from '../service/key-source.js';
import { LocalStore } from '../store/local-store.js';
import {
  configuredTiers,
  databaseServer,
  deployChecks,
  LEASE_TIER,
  openTiers,
  WRITER_LEASE,
} from '../tiers/registry.js';
import type { BackupTier } from '../tiers/tier.js';
import { drillJournal } from '../service/assurance.js';
import { drillCheck } from './drill-checks.js';
import { keyChecks, type PlaceKeys } from './key-checks.js';

/** Check is one line of the doctor's report. */
export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** fix is a one-line next step when the status is not ok. */
  fix?: string;
}

interface LocalHead {
  ledgerId: string | null;
  height: number;
  hash: string | null;
}

/** DoctorOptions: write allows checks that write (a tiny IPFS pin and unpin proving the pinning scope). */
export interface DoctorOptions {
  write: boolean;
}

const MIN_FREE_BYTES = 256 * 1024 * 1024;

/**
 * runDoctor checks the configuration end to end, the seed's troubleshooting list and more: the key, the database,
 * IPFS, Render, the local store and whether the tiers agree. It never changes the ledger; it reads beside a running
 * server. Each check says ok, warn or fail, and what to do.
 */
export async function runDoctor(config: Config, log: Logger, options: DoctorOptions): Promise<Check[]> {
  const out: Check[] = [];
  const add = (c: Check) => out.push(c);
  const guard = async (name: string, fix: string, fn: () => Promise<Check | undefined>) => {
    try {
      const c = await fn();
      if (c) add(c);
    } catch (err) {
      const known = err instanceof PawledgerError;
      add({
        name,
        status: 'fail',
        detail: known ? err.message : describeError(err),
        fix: known && err.hint ? err.hint : fix,
      });
    }
  };

  // The key: configured, or a development key in the data folder.
  let sealer: Sealer | null = null;
  // What each place holds under which key, for the keyring's checks at the end.
  const places: PlaceKeys[] = [];
  await guard('encryption key', 'Run `pawledger keygen` and set LEDGER_ENCRYPTION_KEY', async () => {
    if (config.encryptionKey) {
      sealer = new Sealer(parseKey(config.encryptionKey), parseKeyList(config.previousKeys));
      const previous = sealer.previousKeyIds;
      return {
        name: 'encryption key',
        status: 'ok',
        detail:
          `LEDGER_ENCRYPTION_KEY is set (key id ${sealer.keyId})` +
          (previous.length ? `; LEDGER_PREVIOUS_KEYS open older objects (key ids ${previous.join(', ')})` : ''),
      };
    }
    const file = join(resolve(config.dataDir), GENERATED_KEY_FILE);
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text) sealer = new Sealer(parseKey(text, file));
    const remote = config.onRender || config.remoteTiers.length > 0;
    return {
      name: 'encryption key',
      status: remote ? 'fail' : 'warn',
      detail: text
        ? `LEDGER_ENCRYPTION_KEY is not set; using the development key in ${file}`
        : 'LEDGER_ENCRYPTION_KEY is not set and there is no development key yet',
      fix: 'Run `pawledger keygen`, set LEDGER_ENCRYPTION_KEY, and keep a copy somewhere safe',
    };
  });

  // The local store: readable, writable, room to grow.
  const dir = resolve(config.dataDir);
  let localHead: LocalHead = { ledgerId: null, height: -1, hash: null };
  await guard('local store', `Check that ${dir} exists and is writable by this user`, async () => {
    await access(dir, constants.R_OK | constants.W_OK).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const { store } = await LocalStore.open(dir, { readOnly: true, onDamage: 'report' });
    localHead = { ledgerId: store.ledgerId, height: store.height, hash: store.headHash };
    if (!store.damage) places.push({ name: 'local', keys: await store.keyCounts().catch(() => null) });
    await store.close();
    if (store.damage) {
      const remote = configuredTiers(config);
      return {
        name: 'local store',
        status: 'fail',
        detail: `${dir} is damaged: ${store.damage}`,
        fix: remote.length
          ? `Start \`pawledger serve\` (or \`pawledger restore\`): it restores a verified copy from a tier (${remote.join(', ')}) and moves the damaged files aside`
          : 'No other tier holds a copy: `pawledger import FILE` from an export (or restore from a backup) replaces it and moves the damaged files aside',
      };
    }
    const free = await statfs(dir)
      .then((s) => s.bavail * s.bsize)
      .catch(() => null);
    const low = free !== null && free < MIN_FREE_BYTES;
    return {
      name: 'local store',
      status: low ? 'warn' : 'ok',
      detail: `${dir}: ${store.height + 1} blocks${free !== null ? `, ${Math.round(free / 1024 / 1024)} MiB free` : ''}${config.onRender ? ' (ephemeral on Render: the remote tiers are what survive a deploy)' : ''}`,
      ...(low ? { fix: 'Free disk space or move LEDGER_DATA_DIR' } : {}),
    };
  });

  // Each configured tier: reachable and usable (its own diagnosis), holding a newest backup that verifies, level
  // with the local store. Tiers are taken from the registry in restore order; none is named here.
  for (const c of deployChecks(config)) add(c);
  const opened = openTiers(config, { sealer: sealer ?? new Sealer(parseKey(randomBytes(32).toString('hex'))), log });
  try {
    for (const entry of opened.entries) {
      const { tier, name } = entry;
      let newest: BackupRecord | null = null;
      await guard(name, `Check the configuration of the ${entry.describe} (${tier.label})`, async () => {
        await tier.init();
        const d = (await tier.diagnose?.({ write: options.write })) ?? { status: 'ok' as const, detail: 'reachable' };
        return { name, ...d, detail: `${tier.label}: ${d.detail}` };
      });
      if (out.find((c) => c.name === name)?.status === 'fail') continue;
      await guard(
        `${name} backups`,
        `Check the key; \`pawledger verify --from ${name} --id ID\` shows why a backup fails`,
        async () => {
          newest = await latestBackup(tier, localHead.ledgerId);
          if (!newest)
            return {
              name: `${name} backups`,
              status: 'warn',
              detail: 'no backup yet',
              fix: 'Start `pawledger serve`: every save backs up',
            };
          if (!sealer)
            return {
              name: `${name} backups`,
              status: 'warn',
              detail: `newest backup ${newest.id} not checked: no key`,
            };
          checkRecord(sealer, newest);
          const chain = await verifyBackup(tier, newest, sealer);
          return {
            name: `${name} backups`,
            status: 'ok',
            detail: `newest backup ${newest.id} ("${newest.name}") decrypts and verifies: ${chain.state.totalBlocks} blocks`,
          };
        },
      );
      const ledgerId = localHead.ledgerId;
      if (ledgerId && tier.keyCounts) places.push({ name, keys: await tier.keyCounts(ledgerId).catch(() => null) });
      if (ledgerId)
        await guard(`${name} drills`, `Run \`pawledger drill --tier ${name}\``, () =>
          drillCheck(drillJournal(opened, dir), ledgerId, name, new Date()),
        );
      await guard(
        `${name} agrees`,
        'See `pawledger status`; restart `pawledger serve` to heal a lagging tier',
        async () => agreement(entry.describe, tier, newest, localHead, dir),
      );
      // A fork resolved at some startup leaves the losing local branch as a "Fork: local branch" backup: say so.
      if (tier.keepsBranches) {
        await guard('forks', 'See `pawledger backups list`', async () => {
          const forks = (await tier.listBackups(localHead.ledgerId ?? undefined, { limit: 1000 })).filter((r) =>
            r.name.startsWith('Fork: '),
          );
          if (forks.length === 0)
            return {
              name: 'forks',
              status: 'ok',
              detail: 'no fork between sources recorded in the newest 1000 backups',
            };
          const f = forks[0]!;
          return {
            name: 'forks',
            status: 'warn',
            detail: `${forks.length} fork(s) resolved at startup; the newest kept the other branch as backup ${f.id} ("${f.name}", ${f.createdAt.toISOString()})`,
            fix: `Inspect it with \`pawledger verify --from ${name} --id ${f.id}\`; restore it with \`pawledger restore --from ${name} --id ${f.id}\` if that branch was the right one`,
          };
        });
      }
    }

    // Assigned inside a guard's closure, which the compiler's narrowing does not follow.
    const keyring = sealer as Sealer | null;
    if (keyring) for (const c of keyChecks(places, keyring.keyId, keyring.previousKeyIds)) add(c);

    // The writer lease: who writes, and whether overlapping deploys are kept to one writer.
    const server = databaseServer(config, opened);
    if (server && out.find((c) => c.name === LEASE_TIER)?.status === 'ok') {
      await guard('writer lease', 'Check the database; `pawledger status` shows the holder', async () => {
        const h = await new WriterLease(() => server.db, WRITER_LEASE, config.leaseTtlMs).current();
        const holder = h?.held
          ? `held by ${h.holder} since ${h.acquiredAt.toISOString()} (renewed until ${h.expiresAt.toISOString()})`
          : h
            ? `free (last held by ${h.holder})`
            : 'never taken';
        if (!config.lease) {
          return h?.held
            ? {
                name: 'writer lease',
                status: 'fail',
                detail: `LEDGER_LEASE is off here, but the lease is ${holder}: this instance would write beside it and fork the ledger`,
                fix: 'Set LEDGER_LEASE=on on every instance that shares this database',
              }
            : {
                name: 'writer lease',
                status: config.onRender ? 'warn' : 'ok',
                detail: 'off (LEDGER_LEASE=off): one writing instance per database is assumed',
                ...(config.onRender
                  ? {
                      fix: 'Render overlaps instances during a deploy: unset LEDGER_LEASE (auto is on with DATABASE_URL on Render) or set it to on',
                    }
                  : {}),
              };
        }
        return {
          name: 'writer lease',
          status: 'ok',
          detail: `on (LEDGER_LEASE): ${holder}; one instance writes, others follow and take over when it stops`,
        };
      });
    }
  } finally {
    await opened.close();
  }
  return out;
}

// Whether a tier's newest backup and the local store agree: level, one behind the other, or a fork.
async function agreement(
  what: string,
  tier: BackupTier,
  newest: BackupRecord | null,
  local: LocalHead,
  dir: string,
): Promise<Check | undefined> {
  const name = `${tier.name} agrees`;
  if (!newest || local.height < 0) return;
  if (newest.ledgerId !== local.ledgerId)
    return {
      name,
      status: 'fail',
      detail: `the local store and the ${what} hold different ledgers`,
      fix: 'Restore the right one with `pawledger restore`',
    };
  if (newest.height === local.height && newest.headHash === local.hash)
    return { name, status: 'ok', detail: `local store and ${what} both at block ${local.height}` };
  const tierHoldsLocal = newest.height >= local.height && (await tier.hashAt(newest, local.height)) === local.hash;
  if (tierHoldsLocal)
    return {
      name,
      status: 'warn',
      detail: `the local store (block ${local.height}) is behind the ${what} (block ${newest.height})`,
    };
  const { store } = await LocalStore.open(dir, { readOnly: true });
  const localHoldsTier = (await store.hashAt(newest.height)) === newest.headHash;
  await store.close();
  if (localHoldsTier)
    return {
      name,
      status: 'warn',
      detail: `the ${what} (block ${newest.height}) lags the local store (block ${local.height})`,
      fix: 'Start `pawledger serve`: it catches the tier up',
    };
  return {
    name,
    status: 'fail',
    detail: `FORK: the local store (block ${local.height}) and the ${what} (block ${newest.height}) diverge`,
    fix: 'Start `pawledger serve`: it keeps the local branch in a tier that keeps branches and takes the priority chain',
  };
}
