import { ConflictError, NotFoundError } from '../errors.js';
import type { Attributes, Block, Property, Transaction } from './types.js';

/** PropertyRecord is a property's current state and the blocks that touched it, oldest first. */
export interface PropertyRecord {
  property: Property;
  /** blocks holds the index of every block with a transaction about this property. */
  blocks: number[];
}

function mergeAttributes(current: Attributes, patch: Attributes): Attributes {
  const out: Attributes = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * WorldState is the ledger's current properties, built by applying blocks in order. Applying a block is
 * all-or-nothing: a transaction that breaks a rule throws and leaves the state as it was.
 */
export class WorldState {
  readonly #properties = new Map<string, PropertyRecord>();
  #height = -1;

  /** height is the index of the last applied block (-1 before genesis). */
  get height(): number {
    return this.#height;
  }

  get totalBlocks(): number {
    return this.#height + 1;
  }

  get totalProperties(): number {
    return this.#properties.size;
  }

  get(id: string): PropertyRecord | undefined {
    return this.#properties.get(id);
  }

  /** list returns the properties sorted by id. */
  list(): Property[] {
    return [...this.#properties.keys()].sort().map((id) => this.#properties.get(id)!.property);
  }

  /** check throws ConflictError or NotFoundError if the transactions cannot be applied in order to this state. */
  check(transactions: readonly Transaction[]): void {
    this.#plan(transactions, -1);
  }

  /** apply adds a block's transactions to the state; blocks must come in order. */
  apply(block: Block): void {
    if (block.index !== this.#height + 1) {
      throw new ConflictError(`block ${block.index} cannot follow block ${this.#height}`);
    }
    for (const [id, next] of this.#plan(block.transactions, block.index)) this.#properties.set(id, next);
    this.#height = block.index;
  }

  #plan(transactions: readonly Transaction[], index: number): Map<string, PropertyRecord> {
    const changed = new Map<string, PropertyRecord>();
    const current = (id: string) => changed.get(id) ?? this.#properties.get(id);
    for (const tx of transactions) {
      if (tx.type === 'register') {
        const id = tx.property.id;
        if (current(id)) throw new ConflictError(`property ${id} is already registered`, 'id');
        changed.set(id, { property: tx.property, blocks: [index] });
        continue;
      }
      const rec = current(tx.propertyId);
      if (!rec) throw new NotFoundError(`property ${tx.propertyId} is not registered`);
      let property: Property;
      if (tx.type === 'update') {
        const { name, address, attributes } = tx.changes;
        property = {
          ...rec.property,
          ...(name === undefined ? {} : { name }),
          ...(address === undefined ? {} : { address }),
          attributes: attributes ? mergeAttributes(rec.property.attributes, attributes) : rec.property.attributes,
        };
      } else {
        if (tx.from !== rec.property.owner) {
          throw new ConflictError(`property ${tx.propertyId} is owned by someone other than ${tx.from}`, 'from');
        }
        property = { ...rec.property, owner: tx.to };
      }
      const blocks = rec.blocks.at(-1) === index ? rec.blocks : [...rec.blocks, index];
      changed.set(tx.propertyId, { property, blocks });
    }
    return changed;
  }
}
