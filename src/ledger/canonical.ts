/**
 * canonicalJson renders a JSON value in pawledger's canonical encoding (docs/FORMAT.md): object keys sorted by
 * UTF-16 code unit, no whitespace, strings and numbers as JSON.stringify writes them (ECMAScript's shortest
 * round-trip form, as RFC 8785 requires). Non-finite numbers, undefined, functions and other non-JSON values throw.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      // Array.from visits holes (as undefined, which throws); map would skip them and write "[1,,3]".
      if (Array.isArray(value)) return `[${Array.from(value, (x) => canonicalJson(x)).join(',')}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonical JSON holds only plain objects');
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const parts: string[] = [];
      for (const k of keys) {
        if (obj[k] === undefined) continue;
        parts.push(`${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}
