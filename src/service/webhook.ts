import { ConfigError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { withRetry } from '../util/retry.js';

/** WebhookOptions tune postWebhook. */
export interface WebhookOptions {
  /** timeoutMs bounds one attempt. @default 10000 */
  timeoutMs?: number;
  /** attempts is how many tries in all (retried with backoff on a network error, 429 or 5xx). @default 6 */
  attempts?: number;
  /** baseMs is the first backoff ceiling, doubling at each retry. @default 1000 */
  baseMs?: number;
  log?: Logger;
}

/**
 * postWebhook POSTs `payload` as JSON to `url`, retrying with backoff (util/retry.ts) while the receiver is unreachable
 * or answers 429 or 5xx; another 4xx is a ConfigError (retrying would not help). Errors never carry the URL: a
 * webhook URL is a credential (Slack's are).
 */
export async function postWebhook(url: string, payload: unknown, options: WebhookOptions = {}): Promise<void> {
  const body = JSON.stringify(payload);
  await withRetry(
    async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        });
      } catch (err) {
        throw new UnavailableError(`the alert webhook did not answer (${(err as Error).name})`);
      }
      await res.body?.cancel().catch(() => {});
      if (res.ok) return;
      if (res.status === 429 || res.status >= 500)
        throw new UnavailableError(`the alert webhook answered ${res.status}`);
      throw new ConfigError(`the alert webhook refused the alert (${res.status})`, {
        hint: 'Check LEDGER_ALERT_WEBHOOK_URL',
      });
    },
    {
      what: 'sending an alert to the webhook',
      attempts: options.attempts ?? 6,
      baseMs: options.baseMs ?? 1000,
      ...(options.log ? { log: options.log } : {}),
    },
  );
}
