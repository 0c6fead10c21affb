import type { Sealer } from './seal.js';
import { IntegrityError, ValidationError } from '../errors.js';
import { sha256Hex } from '../ledger/block.js';
import { canonicalJson } from '../ledger/canonical.js';

/**
 * BackupKind tells an automatic backup (one per save) from one an operator asked for, and from the record a restore
 * leaves in every tier: a 'restore' record says the ledger was put back to this point at this time, so a tier whose
 * newest backup is older cannot bring the abandoned blocks back at the next start.
 */
export type BackupKind = 'auto' | 'manual' | 'restore';

/** parseBackupKind reads a stored kind; anything unknown reads as 'auto' (the seal still decides if it is genuine). */
export function parseBackupKind(v: unknown): BackupKind {
  return v === 'manual' || v === 'restore' ? v : 'auto';
}

/**
 * NewBackup is a backup record to store: a named pointer to the chain of `ledgerId` that ends at block `height` with
 * hash `headHash`. `seal` is a MAC (a sealed object with an empty body) over all the other fields, made by the
 * service; a tier stores it as given and never interprets it.
 */
export interface NewBackup {
  ledgerId: string;
  name: string;
  kind: BackupKind;
  createdAt: Date;
  createdBy: number | null;
  height: number;
  headHash: string;
  /** sizeBytes is the sealed size of the whole chain up to height. */
  sizeBytes: number;
  /**
   * root is the chain accumulator's root at height (hex; src/ledger/accumulator.ts): a public commitment to the whole
   * chain that proofs lead to. Absent in records made before it existed, or while the accumulator was being rebuilt.
   */
  root?: string | undefined;
  seal: Buffer;
}

/** BackupRecord is a stored backup record. `id` is the tier's own handle (a row id, a CID). */
export interface BackupRecord extends NewBackup {
  id: string;
  tier: string;
  protected: boolean;
}

/** TierHead is the newest backup a tier holds for a ledger, or null when it holds none. */
export type TierHead = BackupRecord | null;

/** RecordFields are a backup record's fields, without its seal. */
export type RecordFields = Omit<NewBackup, 'seal'>;

// The root is in the digest only when present, so every record sealed before roots existed still verifies.
function digest(r: RecordFields): string {
  return sha256Hex(
    canonicalJson({
      ...(r.root !== undefined && r.root !== null ? { root: r.root } : {}),
      ledgerId: r.ledgerId,
      name: r.name,
      kind: r.kind,
      createdAt: r.createdAt.toISOString(),
      createdBy: r.createdBy,
      height: r.height,
      headHash: r.headHash,
      sizeBytes: r.sizeBytes,
    }),
  );
}

/**
 * sealRecord makes a record's seal: a sealed object with an empty body whose context binds the digest of every field,
 * so the seal is 38 bytes and any edit of a field (by someone without the key) fails checkRecord.
 */
export function sealRecord(sealer: Sealer, fields: RecordFields): NewBackup {
  const seal = sealer.seal(
    { ledgerId: fields.ledgerId, kind: 'backup-record', height: fields.height, hash: digest(fields) },
    Buffer.alloc(0),
  );
  return { ...fields, seal };
}

/**
 * sealRecordAgain is a record (new or stored) whose seal is under the active key, its fields unchanged (key rotation).
 * Its seal must open with the keyring first (IntegrityError otherwise); a seal already under the active key is kept.
 */
export function sealRecordAgain<R extends NewBackup>(sealer: Sealer, record: R): R {
  const seal = sealer.reseal(
    { ledgerId: record.ledgerId, kind: 'backup-record', height: record.height, hash: digest(record) },
    record.seal,
    'id' in record ? `backup ${String(record.id)}` : undefined,
  );
  return seal === record.seal ? record : { ...record, seal };
}

/** checkRecord throws IntegrityError naming the backup if its fields do not match its seal. */
export function checkRecord(sealer: Sealer, record: BackupRecord): void {
  const name = `backup ${record.id} (${record.tier})`;
  try {
    sealer.open(
      { ledgerId: record.ledgerId, kind: 'backup-record', height: record.height, hash: digest(record) },
      record.seal,
    );
  } catch (err) {
    const why = err instanceof IntegrityError ? err.message : String(err);
    throw new IntegrityError(
      `${name} does not match its seal: the record was altered or sealed with another key (${why})`,
      {
        ...(err instanceof IntegrityError && err.hint ? { hint: err.hint } : {}),
      },
    );
  }
}

/** autoBackupName is the seed's name for the record made on each save: "Auto-backup YYYY-MM-DD HH:MM:SS" (UTC). */
export function autoBackupName(at: Date): string {
  return `Auto-backup ${at.toISOString().slice(0, 19).replace('T', ' ')}`;
}

/** MAX_NAME_LENGTH is the longest backup name. */
export const MAX_NAME_LENGTH = 200;

/** MAX_ADMIN_ID is the largest admin id a record names (created_by): the database column is a 32-bit integer. */
export const MAX_ADMIN_ID = 2 ** 31 - 1;

/**
 * NAME_PATTERN is what a backup name may hold: printable text with something besides spaces. PostgreSQL refuses NUL
 * in text columns, a lone surrogate does not survive UTF-8 (the record would no longer match its seal), and line
 * breaks and other control characters have no place in a label.
 */
export const NAME_PATTERN = '^(?=.*\\S)[^\\p{Cc}\\p{Cs}\\p{Zl}\\p{Zp}]*$';
const NAME = new RegExp(NAME_PATTERN, 'u');

/** checkBackupFields refuses, with ValidationError naming the field, a name or admin id no tier could keep as given. */
export function checkBackupFields(name: string, createdBy: number | null): void {
  if (
    typeof name !== 'string' ||
    name.length < 1 ||
    name.length > MAX_NAME_LENGTH ||
    !NAME.test(name) ||
    !name.isWellFormed()
  ) {
    throw new ValidationError(
      `name must be printable text (no control characters) of 1 to ${MAX_NAME_LENGTH} characters`,
      'name',
    );
  }
  if (createdBy !== null && !(Number.isSafeInteger(createdBy) && createdBy >= 0 && createdBy <= MAX_ADMIN_ID)) {
    throw new ValidationError(`adminId must be an integer from 0 to ${MAX_ADMIN_ID}`, 'adminId');
  }
}
