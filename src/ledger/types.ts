/** A JSON value as the ledger stores it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Attributes are a property's free-form fields. */
export type Attributes = { [key: string]: JsonValue };

/** Property is the current state of one registered property. */
export interface Property {
  id: string;
  name: string;
  address: string;
  owner: string;
  attributes: Attributes;
}

/** RegisterTx adds a new property; its id must be unused. */
export interface RegisterTx {
  type: 'register';
  timestamp: string;
  property: Property;
}

/** PropertyChanges are the fields an update may set; attributes merge as RFC 7396 (a null value removes a key). */
export interface PropertyChanges {
  name?: string;
  address?: string;
  attributes?: Attributes;
}

/** UpdateTx changes an existing property's name, address or attributes (never its owner: that is a transfer). */
export interface UpdateTx {
  type: 'update';
  timestamp: string;
  propertyId: string;
  changes: PropertyChanges;
}

/** TransferTx moves an existing property from its current owner (`from` must name them) to `to`. */
export interface TransferTx {
  type: 'transfer';
  timestamp: string;
  propertyId: string;
  from: string;
  to: string;
}

/** Transaction is one change to the ledger's world state. */
export type Transaction = RegisterTx | UpdateTx | TransferTx;

/** BlockBody is a block without its hash: exactly what the hash covers. */
export interface BlockBody {
  index: number;
  timestamp: string;
  transactions: Transaction[];
  previousHash: string;
  merkleRoot: string;
}

/** Block is one link of the chain. */
export interface Block extends BlockBody {
  hash: string;
}

/** GENESIS_PREVIOUS_HASH is the previousHash of block 0. */
export const GENESIS_PREVIOUS_HASH = '0'.repeat(64);
