/**
 * The few typed errors pawledger raises. Callers branch on `code` (or `instanceof`), never on message text.
 * Every message is meant for an operator: it names the object at fault and, where there is one, the next step.
 */
export type ErrorCode =
  | 'INTEGRITY'
  | 'NOT_FOUND'
  | 'UNAVAILABLE'
  | 'CONFIG'
  | 'VALIDATION'
  | 'CONFLICT'
  | 'LOCKED'
  | 'DEGRADED';

/** PawledgerError is the base of every error pawledger raises on purpose. */
export class PawledgerError extends Error {
  readonly code: ErrorCode;
  /** hint tells the operator what to do next, when there is something to do. */
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }
}

/** IntegrityError: bytes that do not decrypt, do not verify, or do not match what was recorded. Never retried. */
export class IntegrityError extends PawledgerError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('INTEGRITY', message, options);
  }
}

/** NotFoundError: the asked-for property, block, backup or object does not exist. */
export class NotFoundError extends PawledgerError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('NOT_FOUND', message, options);
  }
}

/** UnavailableError: a tier or service cannot be reached now; retrying later may succeed. */
export class UnavailableError extends PawledgerError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('UNAVAILABLE', message, options);
  }
}

/** ConfigError: the configuration is missing or wrong; retrying will not help until it is fixed. */
export class ConfigError extends PawledgerError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('CONFIG', message, options);
  }
}

/** ValidationError: input that breaks a rule; `field` names the offending field when there is one. */
export class ValidationError extends PawledgerError {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super('VALIDATION', message);
    this.field = field;
  }
}

/** ConflictError: the request is well formed but contradicts the ledger's state (a duplicate id, a wrong owner). */
export class ConflictError extends PawledgerError {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super('CONFLICT', message);
    this.field = field;
  }
}

/**
 * TimeoutError: a service did not answer within its deadline. Unlike a refused or reset connection, nothing can be
 * learned from it about what the service did with the request, and asking again would wait as long.
 */
export class TimeoutError extends UnavailableError {}

/**
 * NotWriterError: another instance holds the writer lease (LEDGER_LEASE), so this one serves reads only and its
 * writes are refused; they succeed on the holder, or here once the holder stops. `lost` is true when this instance
 * held the lease and found, at an append, that another had taken it: the append wrote nothing.
 */
export class NotWriterError extends UnavailableError {
  readonly lost: boolean;
  constructor(message: string, options: { hint?: string; lost?: boolean } = {}) {
    super(message, {
      hint:
        options.hint ??
        'Send writes to the instance that holds the writer lease, or retry after Retry-After: this instance takes over when it stops',
    });
    this.lost = options.lost ?? false;
  }
}

/**
 * DegradedError: the ledger was restored from a checkpoint that the full replay from block 0 then contradicted (a
 * block that does not verify, or a state that differs from the checkpoint's), so writes are refused until an
 * operator restores a backup that verifies in full, or overrides after checking.
 */
export class DegradedError extends PawledgerError {
  constructor(message: string, options: { hint?: string } = {}) {
    super('DEGRADED', message, {
      hint:
        options.hint ??
        'Restore a backup that verifies in full (`pawledger restore`), or, having checked the ledger, clear the state with `pawledger degraded clear`',
    });
  }
}

/** LockedError: another process holds the ledger's write lock. */
export class LockedError extends PawledgerError {
  constructor(message: string, options: { hint?: string } = {}) {
    super('LOCKED', message, options);
  }
}

/** describeError renders an error for a log line or a CLI message: message plus hint, never a stack. */
export function describeError(err: unknown): string {
  if (err instanceof PawledgerError) return err.hint ? `${err.message}. ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
