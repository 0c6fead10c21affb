/**
 * The crash campaign's model of what it asked the ledger to save (test/support/crash-campaign.ts drives it). Each op
 * carries a unique tag (in the attributes of a register or update, in the new owner of a transfer) so it can be found
 * in the chain whatever block it landed in. An op is:
 *   - acked: the server answered 2xx; it must be in the chain at the block the answer named, with what was sent, forever;
 *   - doubt: the request was cut by a kill (or timed out); the next check finds out whether it was saved;
 *   - present / absent: a doubtful op after that check; a present one must then stay, an absent one never appear;
 *   - refused: an op made to be refused (a transfer from the wrong owner); it must answer 409 and never be saved.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Attributes, Block, Property, Transaction } from '../../src/ledger/types.js';

/** OpKind is the HTTP call an op makes. */
export type OpKind = 'register' | 'update' | 'transfer' | 'bad-transfer';

/** OpStatus is what is known about an op (see the file comment). */
export type OpStatus = 'pending' | 'acked' | 'doubt' | 'present' | 'absent' | 'refused';

/** Op is one request the campaign sent. */
export interface Op {
  tag: string;
  client: number;
  /** seq orders the ops of one property as they were issued. */
  seq: number;
  kind: OpKind;
  propertyId: string;
  /** body is the JSON body sent. */
  body: Record<string, unknown>;
  status: OpStatus;
  /** at is the block the ack named (acked), or the block it was found in (present). */
  at?: { index: number; hash: string };
  /** ackProperty is the property's state the ack returned. */
  ackProperty?: Property;
  /** httpStatus is the answer's status, when there was one. */
  httpStatus?: number;
  /** round is the campaign round (server run) that sent it. */
  round: number;
}

/** Found is where a tagged transaction sits in the chain. */
export interface Found {
  index: number;
  hash: string;
  tx: Transaction;
}

/** tagOf reads the campaign tag out of a transaction, or null for one the campaign did not make. */
export function tagOf(tx: Transaction): string | null {
  const op = (a: Attributes | undefined) => (a && typeof a.op === 'string' ? a.op : null);
  if (tx.type === 'register') return op(tx.property.attributes);
  if (tx.type === 'update') return op(tx.changes.attributes);
  return tx.to.startsWith('owner-') ? tx.to.slice('owner-'.length) : null;
}

/** withoutTimestamp drops the server's timestamp, the one field of a transaction the campaign does not choose. */
function withoutTimestamp(tx: Transaction): Record<string, unknown> {
  const { timestamp: _ignored, ...rest } = tx;
  return rest;
}

/** expectedTx is the transaction (without its timestamp) an op must have become. */
export function expectedTx(op: Op): Record<string, unknown> {
  switch (op.kind) {
    case 'register':
      return { type: 'register', property: { attributes: {}, ...op.body } };
    case 'update':
      return { type: 'update', propertyId: op.propertyId, changes: op.body };
    case 'transfer':
    case 'bad-transfer':
      return { type: 'transfer', propertyId: op.propertyId, from: op.body.from, to: op.body.to };
  }
}

/** sameTx says whether a stored transaction is exactly what the op sent. */
export function sameTx(op: Op, tx: Transaction): boolean {
  return isDeepStrictEqual(withoutTimestamp(tx), expectedTx(op));
}

/** mergeAttributes merges `changes` onto `base`, key by key (a null removes the key); the campaign sends no nesting. */
function mergeAttributes(base: Attributes, changes: Attributes): Attributes {
  const out: Attributes = { ...base };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** apply is a property's state after an op the server saved (state is undefined before its register). */
export function apply(state: Property | undefined, op: Op): Property {
  switch (op.kind) {
    case 'register':
      return { attributes: {}, ...(op.body as Omit<Property, 'attributes'>) } as Property;
    case 'update': {
      const s = state!;
      const b = op.body as { name?: string; address?: string; attributes?: Attributes };
      return {
        ...s,
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.address !== undefined ? { address: b.address } : {}),
        attributes: b.attributes ? mergeAttributes(s.attributes, b.attributes) : s.attributes,
      };
    }
    case 'transfer':
    case 'bad-transfer':
      return { ...state!, owner: op.body.to as string };
  }
}

/** isSaved says whether an op is known to be in the ledger (acked, or found after a doubtful end). */
export const isSaved = (op: Op) => op.status === 'acked' || op.status === 'present';

/** indexChain maps every tagged transaction of the chain to where it is; tags seen twice are reported. */
export function indexChain(blocks: readonly Block[]): {
  byTag: Map<string, Found>;
  duplicates: string[];
  untagged: number[];
} {
  const byTag = new Map<string, Found>();
  const duplicates: string[] = [];
  const untagged: number[] = [];
  for (const b of blocks) {
    for (const tx of b.transactions) {
      const tag = tagOf(tx);
      if (tag === null) {
        untagged.push(b.index);
        continue;
      }
      if (byTag.has(tag)) duplicates.push(`${tag} in blocks ${byTag.get(tag)!.index} and ${b.index}`);
      else byTag.set(tag, { index: b.index, hash: b.hash, tx });
    }
  }
  return { byTag, duplicates, untagged };
}
