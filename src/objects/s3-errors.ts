import { ConfigError, PawledgerError, UnavailableError } from '../errors.js';
import { RetryAfterError, retryAfterFromHeaders } from '../util/retry.js';

/** S3Failure is what an S3 call failed with, read off the SDK's error: the HTTP status and S3's error code. */
export interface S3Failure {
  /** status is the HTTP status, or undefined when no answer came (refused, reset, timed out). */
  status: number | undefined;
  /** code is S3's error code (`NoSuchKey`, `SlowDown`); a HEAD answer has no body, so only a generic name. */
  code: string;
  /** retryAfterMs is the wait a Retry-After header asked for. */
  retryAfterMs: number | undefined;
}

/** s3Failure reads the status, the error code and any Retry-After off an error the AWS SDK threw. */
export function s3Failure(err: unknown): S3Failure {
  const e = (err ?? {}) as {
    name?: string;
    Code?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string> };
  };
  const headers = e.$response?.headers;
  return {
    status: e.$metadata?.httpStatusCode,
    code: String(e.Code ?? e.code ?? e.name ?? 'Error'),
    retryAfterMs: headers ? retryAfterFromHeaders(new Headers(headers)) : undefined,
  };
}

/** CREDENTIAL_CODES are S3's answers to a key that is unknown, wrong, expired or not allowed. */
const CREDENTIAL_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'ExpiredToken',
  'InvalidAccessKeyId',
  'InvalidToken',
  'SignatureDoesNotMatch',
  'AccountProblem',
]);
/** REGION_CODES say the request went to the wrong region (AWS); only S3_REGION or S3_ENDPOINT fixes them. */
const REGION_CODES = new Set([
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
  'IllegalLocationConstraintException',
]);
/** PASSING_CODES are 4xx answers that a retry may get past (a throttle, a body damaged on the way, a racing write). */
const PASSING_CODES = new Set([
  'SlowDown',
  'RequestTimeout',
  'BadDigest',
  'ConditionalRequestConflict',
  'OperationAborted',
  'TooManyRequests',
]);

/** S3Where names what an error is about without a secret: the store's label, the bucket and its prefix. */
export interface S3Where {
  label: string;
  bucket: string;
  prefix: string;
}

/**
 * s3Error turns a failed S3 call into one of pawledger's typed errors, at the store's edge: bad or unauthorised
 * credentials, a missing bucket and a wrong region are ConfigError (never retried, with what to change); throttling,
 * 5xx and a network that did not answer are UnavailableError (RetryAfterError when the service said how long to wait).
 * The SDK's error is not kept as the cause: S3's error details can carry the access key id and the string it signed.
 */
export function s3Error(err: unknown, what: string, where: S3Where): PawledgerError {
  if (err instanceof PawledgerError) return err;
  const name = (err as { name?: string } | null)?.name;
  if (name === 'CredentialsProviderError') {
    return new ConfigError(`${where.label}: no AWS credentials were found for ${what}`, {
      hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or another source the AWS SDK reads, such as AWS_PROFILE)',
    });
  }
  const f = s3Failure(err);
  const said = f.status === undefined ? f.code : `${f.status} ${f.code}`;
  if (f.code === 'RequestTimeTooSkewed') {
    return new ConfigError(`${where.label} refused ${what}: this machine's clock is too far from the service's`, {
      hint: 'Synchronise the clock (NTP); S3 signatures are valid for 15 minutes around the request time',
    });
  }
  const scope = where.prefix ? `objects under ${where.prefix} in bucket ${where.bucket}` : `bucket ${where.bucket}`;
  if (f.status === 403 || CREDENTIAL_CODES.has(f.code)) {
    return new ConfigError(`${where.label} refused the credentials for ${what} (${said})`, {
      hint: `Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that the key may list, read, write and delete ${scope}`,
    });
  }
  if (f.code === 'NoSuchBucket') {
    return new ConfigError(`${where.label}: the bucket ${where.bucket} does not exist (${what})`, {
      hint: 'Create the bucket, or correct S3_BUCKET, S3_ENDPOINT and S3_REGION',
    });
  }
  if (REGION_CODES.has(f.code) || f.status === 301) {
    return new ConfigError(`${where.label} is in another region than the one asked (${what}: ${said})`, {
      hint: "Set S3_REGION to the bucket's region (R2: auto; B2: the region in its endpoint, e.g. us-west-004)",
    });
  }
  const passing = f.status === undefined || f.status === 429 || f.status >= 500 || PASSING_CODES.has(f.code);
  if (passing) {
    const message = `${where.label} did not complete ${what} (${f.status === undefined ? describeNetwork(err) : said})`;
    const hint = f.status === undefined ? 'Check the network and S3_ENDPOINT; it is retried with backoff' : undefined;
    return f.retryAfterMs !== undefined
      ? new RetryAfterError(message, { retryAfterMs: f.retryAfterMs, ...(hint ? { hint } : {}) })
      : new UnavailableError(message, { ...(hint ? { hint } : {}), cause: f.status === undefined ? err : undefined });
  }
  // Any other 4xx is a request this configuration makes wrongly: retrying sends the same request again.
  return new ConfigError(`${where.label} refused ${what} (${said})`, {
    hint: 'Check S3_ENDPOINT, S3_REGION and S3_FORCE_PATH_STYLE against the provider’s S3 documentation',
  });
}

/** describeNetwork names a failure that got no HTTP answer (ECONNREFUSED, a timeout) without the SDK's stack. */
function describeNetwork(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string } | null;
  return [e?.code, e?.name !== 'Error' ? e?.name : undefined, e?.message].filter(Boolean).join(': ') || 'no answer';
}
