import { ConflictError, NotFoundError } from '../errors.js';
import { canonicalJson } from './canonical.js';
import type { Attributes, Block, Property, Transaction } from './types.js';

/** PropertyRecord is a property's current state and the blocks that touched it, oldest first. */
export interface PropertyRecord {
  property: Property;
  /** blocks holds the index of every block with a transaction about this property. */
  blocks: number[];
}

/**
 * StateEntry is one property as the state keeps it: its id, the blocks that touched it (one index, the common case,
 * or several), and its canonical JSON. A checkpoint (state-codec.ts) writes these as they are.
 */
export interface StateEntry {
  id: string;
  blocks: number | number[];
  json: string;
}

function mergeAttributes(current: Attributes, patch: Attributes): Attributes {
  const out: Attributes = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

interface Change {
  property: Property;
  json: string;
}

/**
 * WorldState is the ledger's current properties, built by applying blocks in order. Applying a block is
 * all-or-nothing: a transaction that breaks a rule throws and leaves the state as it was.
 *
 * It is kept compact, since it lives in memory at any chain length: each property as its canonical JSON (parsed
 * when read), and the blocks that touched it as one number or an array. Properties stay in the order they were
 * registered, which is what a checkpoint records and its digest covers.
 */
export class WorldState {
  readonly #json = new Map<string, string>();
  readonly #blocks = new Map<string, number | number[]>();
  #height = -1;
  // Snapshots being read: each keeps the entries changed since it was taken as they were then (copy on write).
  readonly #snapshots = new Set<Map<string, StateEntry>>();

  /** height is the index of the last applied block (-1 before genesis). */
  get height(): number {
    return this.#height;
  }

  get totalBlocks(): number {
    return this.#height + 1;
  }

  get totalProperties(): number {
    return this.#json.size;
  }

  get(id: string): PropertyRecord | undefined {
    const json = this.#json.get(id);
    if (json === undefined) return undefined;
    const blocks = this.#blocks.get(id)!;
    return { property: JSON.parse(json) as Property, blocks: typeof blocks === 'number' ? [blocks] : [...blocks] };
  }

  /** list returns the properties sorted by id. */
  list(): Property[] {
    return [...this.#json.keys()].sort().map((id) => JSON.parse(this.#json.get(id)!) as Property);
  }

  /** entries yields every property in registration order, as a checkpoint keeps them. */
  *entries(): Generator<StateEntry> {
    for (const [id, json] of this.#json) yield { id, json, blocks: this.#blocks.get(id)! };
  }

  /**
   * snapshot is the state as it stands now, to be read while blocks go on being applied (a checkpoint taken beside
   * saves): its entries are what entries() gives now, whatever is applied after. Nothing is copied up front; an entry
   * changed before the snapshot reads it is kept as it was (copy on write). Call release() when done.
   */
  snapshot(): { height: number; size: number; entries: () => Generator<StateEntry>; release: () => void } {
    const kept = new Map<string, StateEntry>();
    this.#snapshots.add(kept);
    const size = this.#json.size;
    const json = this.#json;
    const blocks = this.#blocks;
    return {
      height: this.#height,
      size,
      entries: function* () {
        let n = 0;
        // Properties registered after the snapshot come after its `size` entries (Map keeps insertion order).
        for (const [id, j] of json) {
          if (n++ >= size) break;
          yield kept.get(id) ?? { id, json: j, blocks: blocks.get(id)! };
        }
      },
      release: () => void this.#snapshots.delete(kept),
    };
  }

  // Before an entry changes: every snapshot still reading keeps it as it was.
  #keep(id: string): void {
    if (this.#snapshots.size === 0) return;
    const json = this.#json.get(id);
    if (json === undefined) return;
    const had = this.#blocks.get(id)!;
    for (const kept of this.#snapshots)
      if (!kept.has(id)) kept.set(id, { id, json, blocks: typeof had === 'number' ? had : [...had] });
  }

  /**
   * restore builds the state a checkpoint recorded: `entries` in registration order, after block `height`. It trusts
   * them (a checkpoint is sealed, and the background replay checks its digest); a repeated id throws.
   */
  static restore(height: number, entries: Iterable<StateEntry>): WorldState {
    const state = new WorldState();
    state.#height = height;
    for (const e of entries) state.add(e);
    return state;
  }

  /** add appends one entry of a checkpoint being restored (see restore); a repeated id throws ConflictError. */
  add(e: StateEntry): void {
    if (this.#json.has(e.id)) throw new ConflictError(`the state holds property ${e.id} twice`);
    this.#json.set(e.id, e.json);
    this.#blocks.set(e.id, e.blocks);
  }

  /** setHeight sets the height of a state restored entry by entry (see add). */
  setHeight(height: number): void {
    this.#height = height;
  }

  /** check throws ConflictError or NotFoundError if the transactions cannot be applied in order to this state. */
  check(transactions: readonly Transaction[]): void {
    this.#plan(transactions);
  }

  /** apply adds a block's transactions to the state; blocks must come in order. */
  apply(block: Block): void {
    if (block.index !== this.#height + 1) {
      throw new ConflictError(`block ${block.index} cannot follow block ${this.#height}`);
    }
    for (const [id, change] of this.#plan(block.transactions)) {
      this.#keep(id);
      this.#json.set(id, change.json);
      const had = this.#blocks.get(id);
      if (had === undefined) this.#blocks.set(id, block.index);
      else if (typeof had === 'number') {
        if (had !== block.index) this.#blocks.set(id, [had, block.index]);
      } else if (had.at(-1) !== block.index) had.push(block.index);
    }
    this.#height = block.index;
  }

  #plan(transactions: readonly Transaction[]): Map<string, Change> {
    const changed = new Map<string, Change>();
    const current = (id: string): Property | undefined => {
      const c = changed.get(id);
      if (c) return c.property;
      const json = this.#json.get(id);
      return json === undefined ? undefined : (JSON.parse(json) as Property);
    };
    for (const tx of transactions) {
      if (tx.type === 'register') {
        const id = tx.property.id;
        if (changed.has(id) || this.#json.has(id))
          throw new ConflictError(`property ${id} is already registered`, 'id');
        changed.set(id, { property: tx.property, json: canonicalJson(tx.property) });
        continue;
      }
      const prop = current(tx.propertyId);
      if (!prop) throw new NotFoundError(`property ${tx.propertyId} is not registered`);
      let property: Property;
      if (tx.type === 'update') {
        const { name, address, attributes } = tx.changes;
        property = {
          ...prop,
          ...(name === undefined ? {} : { name }),
          ...(address === undefined ? {} : { address }),
          attributes: attributes ? mergeAttributes(prop.attributes, attributes) : prop.attributes,
        };
      } else {
        if (tx.from !== prop.owner) {
          throw new ConflictError(`property ${tx.propertyId} is owned by someone other than ${tx.from}`, 'from');
        }
        property = { ...prop, owner: tx.to };
      }
      changed.set(tx.propertyId, { property, json: canonicalJson(property) });
    }
    return changed;
  }
}
