import { ConfigError } from '../errors.js';

/** S3StoreOptions configure the S3 store: AWS S3, or any S3-compatible service (Cloudflare R2, Backblaze B2, MinIO). */
export interface S3StoreOptions {
  /** bucket holds the objects; it must exist (the store never creates it). */
  bucket: string;
  /** prefix is put before every key ('pawledger/prod' keeps keys under `pawledger/prod/`). @default '' */
  prefix?: string;
  /** endpoint is the service's URL (`https://<account>.r2.cloudflarestorage.com`). @default AWS S3 in `region` */
  endpoint?: string;
  /** region signs the requests: the bucket's AWS region, `auto` on R2, the endpoint's region on B2. @default us-east-1 */
  region?: string;
  /** forcePathStyle puts the bucket in the path, not the host name (MinIO needs it). @default true with an endpoint */
  forcePathStyle?: boolean;
  /** credentials, when given, replace the AWS SDK's usual chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** timeoutMs bounds each request once connected (connecting is bounded by 5 s). @default 30000 */
  timeoutMs?: number;
  /** pageSize is how many keys one ListObjectsV2 request asks for (S3 answers at most 1000). @default 1000 */
  pageSize?: number;
}

/** S3Place is where a store's objects go, checked: the bucket, the key prefix ('' or ending in '/'), the label. */
export interface S3Place {
  bucket: string;
  prefix: string;
  label: string;
}

/**
 * s3Place checks the options before anything is sent (a URL as the bucket, credentials in the endpoint, a path after
 * it) and names the place for people: `S3 bucket <bucket>[/<prefix>] at <host>`, never a key or a password.
 */
export function s3Place(options: S3StoreOptions): S3Place {
  const bucket = validBucket(options?.bucket);
  const prefix = validStorePrefix(options.prefix ?? '');
  const host = endpointHost(options.endpoint, validRegion(options.region ?? 'us-east-1'));
  return { bucket, prefix, label: `S3 bucket ${bucket}${prefix ? `/${prefix.slice(0, -1)}` : ''} at ${host}` };
}

function validBucket(bucket: unknown): string {
  if (typeof bucket === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/.test(bucket)) return bucket;
  throw new ConfigError(`${JSON.stringify(String(bucket ?? ''))} is not an S3 bucket name`, {
    hint: 'Set S3_BUCKET to the bucket’s name alone (3-63 letters, digits, dots and hyphens), not a URL',
  });
}

/** validStorePrefix normalizes S3_PREFIX to '' or `seg/.../` (segments of letters, digits, `._=-`). */
function validStorePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const segments = trimmed.split('/');
  if (segments.every((s) => /^[A-Za-z0-9._=-]+$/.test(s) && s !== '.' && s !== '..')) return `${trimmed}/`;
  throw new ConfigError(`${JSON.stringify(prefix)} is not a key prefix`, {
    hint: 'Set S3_PREFIX to folder names of letters, digits, dots, hyphens and underscores joined by /',
  });
}

function validRegion(region: string): string {
  if (/^[a-z0-9-]+$/.test(region)) return region;
  throw new ConfigError(`${JSON.stringify(region)} is not a region`, {
    hint: 'Set S3_REGION to the bucket’s region (us-east-1, eu-west-3; auto on R2)',
  });
}

/** endpointHost is the host the requests go to, for the label: never the URL's user or password. */
function endpointHost(endpoint: string | undefined, region: string): string {
  if (endpoint === undefined) return `s3.${region}.amazonaws.com`;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError('S3_ENDPOINT is not a URL', { hint: 'Set it like https://s3.us-west-004.backblazeb2.com' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`S3_ENDPOINT must be an http(s) URL, got ${url.protocol}`, {
      hint: 'Set it like https://<account id>.r2.cloudflarestorage.com',
    });
  }
  if (url.username || url.password) {
    throw new ConfigError('S3_ENDPOINT must not carry credentials', {
      hint: 'Remove them from the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead',
    });
  }
  if (url.pathname !== '/' || url.search) {
    throw new ConfigError(`S3_ENDPOINT must be the service's URL alone, without a path (${url.host}${url.pathname})`, {
      hint: 'Put the bucket in S3_BUCKET and folders in S3_PREFIX',
    });
  }
  return url.host;
}
