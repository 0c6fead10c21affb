import { randomBytes } from 'node:crypto';
import { access, constants, readFile, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { latestBackup, verifyBackup } from '../engine/restore.js';
import type { Config } from '../config.js';
import { GENERATED_KEY_FILE } from '../service/key-source.js';
import { parseKey } from '../crypto/key.js';
import { Sealer } from '../crypto/seal.js';
import { WriterLease } from '../db/lease.js';
import { pendingMigrations } from '../db/migrate.js';
import { parseDatabaseUrl } from '../db/url.js';
import { describeError, PawledgerError } from '../errors.js';
import type { Logger } from '../log.js';
import { RENDER_CID_VAR } from '../pointers/render-pointer.js';
import { RenderEnvClient } from '../pointers/render.js';
import { checkRecord } from '../crypto/records.js';
import { LocalStore } from '../store/local-store.js';
import { createObjectStore, openTiers } from '../tiers/open.js';
import { WRITER_LEASE } from '../tiers/select.js';
import type { BackupRecord } from '../crypto/records.js';

/** Check is one line of the doctor's report. */
export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** fix is a one-line next step when the status is not ok. */
  fix?: string;
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
  const guard = async (name: string, fix: string, fn: () => Promise<Check | void>) => {
    try {
      const c = await fn();
      if (c) add(c);
    } catch (err) {
      const known = err instanceof PawledgerError;
      add({ name, status: 'fail', detail: known ? err.message : describeError(err), fix: known && err.hint ? err.hint : fix });
    }
  };

  // The key: configured, or a development key in the data folder.
  let sealer: Sealer | null = null;
  await guard('encryption key', 'Run `pawledger keygen` and set LEDGER_ENCRYPTION_KEY', async () => {
    if (config.encryptionKey) {
      sealer = new Sealer(parseKey(config.encryptionKey));
      return { name: 'encryption key', status: 'ok', detail: `LEDGER_ENCRYPTION_KEY is set (key id ${sealer.keyId})` };
    }
    const file = join(resolve(config.dataDir), GENERATED_KEY_FILE);
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text) sealer = new Sealer(parseKey(text, file));
    const remote = config.onRender || config.remoteTiers.length > 0;
    return {
      name: 'encryption key', status: remote ? 'fail' : 'warn',
      detail: text ? `LEDGER_ENCRYPTION_KEY is not set; using the development key in ${file}` : 'LEDGER_ENCRYPTION_KEY is not set and there is no development key yet',
      fix: 'Run `pawledger keygen`, set LEDGER_ENCRYPTION_KEY, and keep a copy somewhere safe',
    };
  });

  // The local store: readable, writable, room to grow.
  const dir = resolve(config.dataDir);
  let localHead: { ledgerId: string | null; height: number; hash: string | null } = { ledgerId: null, height: -1, hash: null };
  await guard('local store', `Check that ${dir} exists and is writable by this user`, async () => {
    await access(dir, constants.R_OK | constants.W_OK).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const { store } = await LocalStore.open(dir, { readOnly: true, onDamage: 'report' });
    localHead = { ledgerId: store.ledgerId, height: store.height, hash: store.headHash };
    await store.close();
    if (store.damage) {
      const remote = config.database.kind !== 'off' || config.ipfs.kind !== 'off';
      return {
        name: 'local store', status: 'fail', detail: `${dir} is damaged: ${store.damage}`,
        fix: remote
          ? 'Start `pawledger serve` (or `pawledger restore`): it restores a verified copy from the database or IPFS and moves the damaged files aside'
          : 'No other tier holds a copy: `pawledger import FILE` from an export (or restore from a backup) replaces it and moves the damaged files aside',
      };
    }
    const free = await statfs(dir).then((s) => s.bavail * s.bsize).catch(() => null);
    const low = free !== null && free < MIN_FREE_BYTES;
    return {
      name: 'local store', status: low ? 'warn' : 'ok',
      detail: `${dir}: ${store.height + 1} blocks${free !== null ? `, ${Math.round(free / 1024 / 1024)} MiB free` : ''}${config.onRender ? ' (ephemeral on Render: the remote tiers are what survive a deploy)' : ''}`,
      ...(low ? { fix: 'Free disk space or move LEDGER_DATA_DIR' } : {}),
    };
  });

  // The database: well formed, reachable, migrated, holding backups that verify.
  let dbNewest: BackupRecord | null = null;
  const { db, ipfs } = openTiers(config, sealer ?? new Sealer(parseKey(randomBytes(32).toString('hex'))), log);
  try {
    if (config.database.kind === 'off') {
      add({ name: 'database', status: config.onRender ? 'fail' : 'warn', detail: 'the database tier is off (LEDGER_DB=off)', fix: 'Set DATABASE_URL to keep backups off this machine' });
    } else if (db) {
      await guard('database', 'Check DATABASE_URL and that the server is running', async () => {
        if (config.database.kind === 'postgres') parseDatabaseUrl(config.database.url);
        const detail = config.database.kind === 'pglite' ? `embedded PGlite at ${resolve(config.database.dir)}` : db.label;
        // Connects (over DATABASE_URL's own TLS settings) and brings the schema up to date, as serve would.
        await db.migrate();
        const pending = await pendingMigrations(db.db);
        if (pending.length > 0) return { name: 'database', status: 'fail', detail: `${detail}: migrations not applied: ${pending.join(', ')}`, fix: 'Run `pawledger migrate`' };
        const onEphemeral = config.onRender && config.database.kind === 'pglite';
        return {
          name: 'database', status: onEphemeral ? 'fail' : 'ok', detail: `${detail}: reachable, schema up to date`,
          ...(onEphemeral ? { fix: 'On Render the embedded database is wiped at each deploy: set DATABASE_URL to a Render PostgreSQL' } : {}),
        };
      });
      await guard('database backups', 'Check the key; `pawledger verify --from db --id ID` shows why a backup fails', async () => {
        if (!out.some((c) => c.name === 'database' && c.status !== 'fail')) return;
        dbNewest = await latestBackup(db, localHead.ledgerId);
        if (!dbNewest) return { name: 'database backups', status: 'warn', detail: 'no backup yet', fix: 'Start `pawledger serve`: every save backs up' };
        if (!sealer) return { name: 'database backups', status: 'warn', detail: `newest backup ${dbNewest.id} not checked: no key` };
        checkRecord(sealer, dbNewest);
        const chain = await verifyBackup(db, dbNewest, sealer);
        return { name: 'database backups', status: 'ok', detail: `newest backup ${dbNewest.id} ("${dbNewest.name}") decrypts and verifies: ${chain.state.totalBlocks} blocks` };
      });
    }

    // A fork resolved at some startup leaves the losing local branch as a "Fork: local branch" backup: say so.
    if (db && out.some((c) => c.name === 'database' && c.status === 'ok')) {
      await guard('forks', 'See `pawledger backups list`', async () => {
        const forks = (await db.listBackups(localHead.ledgerId ?? undefined, { limit: 1000 })).filter((r) => r.name.startsWith('Fork: '));
        if (forks.length === 0) return { name: 'forks', status: 'ok', detail: 'no fork between sources recorded in the newest 1000 backups' };
        const f = forks[0]!;
        return {
          name: 'forks', status: 'warn', detail: `${forks.length} fork(s) resolved at startup; the newest kept the other branch as backup ${f.id} ("${f.name}", ${f.createdAt.toISOString()})`,
          fix: `Inspect it with \`pawledger verify --from db --id ${f.id}\`; restore it with \`pawledger restore --from db --id ${f.id}\` if that branch was the right one`,
        };
      });
    }

    // The writer lease: who writes, and whether overlapping deploys are kept to one writer.
    if (db && config.database.kind === 'postgres' && out.some((c) => c.name === 'database' && c.status === 'ok')) {
      await guard('writer lease', 'Check the database; `pawledger status` shows the holder', async () => {
        const h = await new WriterLease(() => db.db, WRITER_LEASE, config.leaseTtlMs).current();
        const holder = h?.held ? `held by ${h.holder} since ${h.acquiredAt.toISOString()} (renewed until ${h.expiresAt.toISOString()})` : h ? `free (last held by ${h.holder})` : 'never taken';
        if (!config.lease) {
          return h?.held
            ? { name: 'writer lease', status: 'fail', detail: `LEDGER_LEASE is off here, but the lease is ${holder}: this instance would write beside it and fork the ledger`, fix: 'Set LEDGER_LEASE=on on every instance that shares this database' }
            : { name: 'writer lease', status: config.onRender ? 'warn' : 'ok', detail: 'off (LEDGER_LEASE=off): one writing instance per database is assumed', ...(config.onRender ? { fix: 'Render overlaps instances during a deploy: unset LEDGER_LEASE (auto is on with DATABASE_URL on Render) or set it to on' } : {}) };
        }
        return { name: 'writer lease', status: 'ok', detail: `on (LEDGER_LEASE): ${holder}; one instance writes, others follow and take over when it stops` };
      });
    }

    // IPFS: credentials, optionally the pinning scope, and the newest manifest.
    if (config.ipfs.kind === 'off') {
      add({ name: 'ipfs', status: 'ok', detail: 'off (no PINATA_*, IPFS_API_URL or IPFS_PROVIDER)' });
    } else {
      await guard('ipfs', config.ipfs.kind === 'pinata' ? 'Check PINATA_JWT (or PINATA_API_KEY and PINATA_SECRET_KEY) in the Pinata dashboard' : 'Check IPFS_API_URL / IPFS_EMBEDDED_DIR', async () => {
        const provider = createObjectStore({ ...config, retryMs: 100 }, log)!;
        try {
          await provider.check();
          let detail = `${provider.label}: credentials accepted`;
          if (options.write) {
            const cid = await provider.put(Buffer.from(`pawledger doctor ${new Date().toISOString()}`), { key: `probes/doctor-${Date.now()}`, label: 'pawledger doctor probe', keyvalues: { kind: 'probe' } });
            await provider.get(cid);
            await provider.delete(cid);
            detail += `; pinned, fetched and unpinned a probe (${cid})`;
          }
          return { name: 'ipfs', status: 'ok', detail, ...(options.write ? {} : { fix: 'Run `pawledger doctor --write` to prove the key may pin (it pins and unpins a tiny file)' }) };
        } finally {
          await provider.close();
        }
      });
      await guard('ipfs backups', 'Check the key and the gateway; `pawledger verify --cid CID` shows why', async () => {
        if (!ipfs || !sealer) return;
        const latest = await ipfs.latest(localHead.ledgerId ?? undefined);
        if (!latest) return { name: 'ipfs backups', status: 'warn', detail: 'no IPFS backup found through the pointers', fix: 'Start `pawledger serve`: saves are uploaded in the background' };
        return { name: 'ipfs backups', status: 'ok', detail: `newest manifest ${latest.cid} opens: block ${latest.manifest.height}` };
      });
    }

    // Render: the API key and service id, where the newest CID is kept.
    if (config.render) {
      await guard('render', 'Check RENDER_API_KEY and RENDER_SERVICE_ID', async () => {
        const client = new RenderEnvClient({ ...config.render!, log });
        const cid = await client.getVar(RENDER_CID_VAR);
        return { name: 'render', status: 'ok', detail: `Render API reachable, service ${config.render!.serviceId} found; ${RENDER_CID_VAR}=${cid ?? '(unset)'}` };
      });
    } else if (config.onRender && config.ipfs.kind !== 'off') {
      add({ name: 'render', status: 'warn', detail: 'RENDER_API_KEY/RENDER_SERVICE_ID are not set', fix: 'Set them so the newest IPFS CID survives a deploy that loses the database' });
    }

    // Agreement: a lagging tier or a fork.
    await guard('tiers agree', 'See `pawledger status`; restart `pawledger serve` to heal a lagging tier', async () => {
      const newest = dbNewest as BackupRecord | null;
      if (!db || !newest || localHead.height < 0) return;
      if (newest.ledgerId !== localHead.ledgerId) return { name: 'tiers agree', status: 'fail', detail: 'the local store and the database hold different ledgers', fix: 'Restore the right one with `pawledger restore`' };
      if (newest.height === localHead.height && newest.headHash === localHead.hash) return { name: 'tiers agree', status: 'ok', detail: `local store and database both at block ${localHead.height}` };
      const dbHoldsLocal = newest.height >= localHead.height && (await db.hashAt(newest, localHead.height)) === localHead.hash;
      if (dbHoldsLocal) return { name: 'tiers agree', status: 'warn', detail: `the local store (block ${localHead.height}) is behind the database (block ${newest.height})` };
      const { store } = await LocalStore.open(dir, { readOnly: true });
      const localHoldsDb = (await store.hashAt(newest.height)) === newest.headHash;
      await store.close();
      if (localHoldsDb) return { name: 'tiers agree', status: 'warn', detail: `the database (block ${newest.height}) lags the local store (block ${localHead.height})`, fix: 'Start `pawledger serve`: it catches the database up' };
      return { name: 'tiers agree', status: 'fail', detail: `FORK: the local store (block ${localHead.height}) and the database (block ${newest.height}) diverge`, fix: 'Start `pawledger serve`: it keeps the local branch in the database and takes the database\'s chain' };
    });
  } finally {
    await db?.close().catch(() => {});
    await ipfs?.close().catch(() => {});
  }
  return out;
}
