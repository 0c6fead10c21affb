import { ConfigError } from '../errors.js';

/** DEFAULT_KUBO_API is Kubo's RPC address out of the box. */
export const DEFAULT_KUBO_API = 'http://127.0.0.1:5001/api/v0';

/** KuboPlace is a Kubo RPC address, checked: its base without credentials, the credentials, and the label. */
export interface KuboPlace {
  base: string;
  /** userinfo is `user:password` from the URL (sent as Basic auth: fetch refuses URLs with credentials), or null. */
  userinfo: string | null;
  label: string;
}

/**
 * kuboPlace checks a Kubo RPC URL before anything loads or connects, and names it for people (`Kubo RPC <base>`,
 * never a password). Apart from the store so that naming a configured node does not load the IPFS stack.
 */
export function kuboPlace(apiUrl: string): KuboPlace {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    throw new ConfigError(`Kubo API URL ${JSON.stringify(redact(apiUrl))} is not a URL`, {
      hint: `Use the node's RPC base, e.g. ${DEFAULT_KUBO_API}`,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`Kubo API URL ${redact(apiUrl)} is not http(s)`, {
      hint: `Use the node's RPC base, e.g. ${DEFAULT_KUBO_API}`,
    });
  }
  const userinfo =
    url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : null;
  url.username = '';
  url.password = '';
  const base = url.toString().replace(/\/+$/, '');
  return { base, userinfo, label: `Kubo RPC ${base}` };
}

/** redact removes a user and password from a URL before it reaches a label or a log. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString().replace(/\/+$/, '');
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}
