import type { ObjectStore, PutRequest } from './object-store.js';

/** StoreFacts are what a store says of itself before it is loaded: what logs, status and the pack engine read at once. */
export interface StoreFacts {
  name: string;
  label: string;
  contentAddressed: boolean;
  /** listable is true for a store that lists its keys (a folder, a bucket): the loaded store must have list(). */
  listable: boolean;
}

/**
 * lazyStore is an object store whose module loads at its first call. The S3 SDK and the IPFS stack take hundreds of
 * milliseconds to import; a deployment that does not configure them must not pay that on every start (a deploy on
 * Render is a cold start). The load is shared by concurrent first calls; a load that fails is tried again at the
 * next call.
 */
export function lazyStore(facts: StoreFacts, load: () => Promise<ObjectStore>): ObjectStore {
  let loading: Promise<ObjectStore> | null = null;
  const store = (): Promise<ObjectStore> => {
    loading ??= load().catch((err: unknown) => {
      loading = null;
      throw err;
    });
    return loading;
  };
  const lazy: ObjectStore = {
    name: facts.name,
    label: facts.label,
    contentAddressed: facts.contentAddressed,
    put: async (bytes: Uint8Array, request: PutRequest) => (await store()).put(bytes, request),
    get: async (id: string, options?: { sha256?: string }) => (await store()).get(id, options),
    has: async (id: string) => (await store()).has(id),
    delete: async (id: string) => (await store()).delete(id),
    check: async () => (await store()).check(),
    // Closing a store that never loaded has nothing to close, and must not load it.
    close: async () => {
      const loaded = loading ? await loading.catch(() => null) : null;
      await loaded?.close();
    },
  };
  if (facts.listable) {
    lazy.list = async function* (prefix: string) {
      const s = await store();
      if (!s.list) throw new Error(`${facts.label} cannot list its objects`);
      yield* s.list(prefix);
    };
  }
  return lazy;
}
