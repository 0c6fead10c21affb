import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ConflictError, IntegrityError, NotFoundError, UnavailableError } from '../errors.js';
import { OBJECT_KEY, type ObjectStore, type PutRequest, validKey, validPrefix } from './object-store.js';
import { s3Error, s3Failure, type S3Where } from './s3-errors.js';
import { s3Place, type S3StoreOptions } from './s3-options.js';

export type { S3StoreOptions } from './s3-options.js';
import { sha256Hex } from './digest.js';

/** NOT_IMPLEMENTED is the answer of a service that refuses the If-None-Match header on a PUT outright. */
const NOT_IMPLEMENTED = 501;

/**
 * S3Store keeps each object under `<prefix><key>` in an S3 bucket: a named store that never overwrites, and lists its
 * own keys (so the bucket alone tells a new machine its newest backup). Bytes are opaque; get checks them only
 * against a `sha256` the caller recorded.
 *
 * Never overwriting on services that differ: put first asks (HEAD) whether the key exists, then writes with
 * `If-None-Match: *`, which AWS S3, R2 and MinIO refuse with 412 when another put got there first. Some services
 * (Backblaze B2, s3rver) ignore that header, so the HEAD is what keeps them from overwriting; one that refuses the
 * header (501) is written to without it from then on. An existing key holding the same bytes is a success (a put
 * retried); other bytes are ConflictError, the object untouched. So every put costs two requests, one more on a repeat.
 *
 * The SDK's own retries are off (one attempt a call): retryingStore is the one retry mechanism. Failures come out
 * typed by s3Error. Nothing connects before the first call; the label names bucket, prefix and host, never a key.
 */
export class S3Store implements ObjectStore {
  readonly name = 's3';
  readonly contentAddressed = false;
  readonly label: string;
  readonly #o: S3StoreOptions;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #where: S3Where;
  #client: S3Client | null = null;
  /** #conditional is false once the service refused If-None-Match on a PUT with 501. */
  #conditional = true;
  /** #bucketSeen is true once the bucket answered: a 404 on a key then means the key, not the bucket, is missing. */
  #bucketSeen = false;

  constructor(options: S3StoreOptions) {
    this.#o = options;
    ({ bucket: this.#bucket, prefix: this.#prefix, label: this.label } = s3Place(options));
    this.#where = { label: this.label, bucket: this.#bucket, prefix: this.#prefix };
  }

  async put(bytes: Uint8Array, request: PutRequest): Promise<string> {
    const key = validKey(request?.key);
    if (await this.#holds(key, bytes)) return key;
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const send = (conditional: boolean) =>
      this.#send(
        `put ${key}`,
        (s3) =>
          s3.send(
            new PutObjectCommand({
              Bucket: this.#bucket,
              Key: this.#prefix + key,
              Body: body,
              ContentLength: body.length,
              // The service checks the body against it, so bytes damaged on the way are refused (BadDigest), not kept.
              ContentMD5: createHash('md5').update(body).digest('base64'),
              ContentType: 'application/octet-stream',
              ...(conditional ? { IfNoneMatch: '*' } : {}),
            }),
          ),
        (err) => {
          const { status } = s3Failure(err);
          if (status === 412) return 'exists';
          if (status === NOT_IMPLEMENTED && conditional) return 'unconditional';
          return undefined;
        },
      );
    let outcome = await send(this.#conditional);
    if (outcome === 'unconditional') {
      this.#conditional = false;
      outcome = await send(false);
    }
    if (outcome === 'exists' && !(await this.#holds(key, bytes))) {
      throw new UnavailableError(`${key} in ${this.label} was there at the write and gone after it; try again`);
    }
    return key;
  }

  async get(id: string, options: { sha256?: string } = {}): Promise<Buffer> {
    const key = validKey(id);
    const out = await this.#send(
      `get ${key}`,
      (s3) => s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key })),
      (err) => (s3Failure(err).code === 'NoSuchKey' ? 'absent' : undefined),
    );
    if (out === 'absent')
      throw new NotFoundError(`${key} is not in ${this.label}`, { hint: 'Restore from another tier' });
    let bytes: Buffer;
    try {
      bytes = Buffer.from((await out.Body?.transformToByteArray()) ?? new Uint8Array(0));
    } catch (err) {
      throw s3Error(err, `get ${key}`, this.#where); // the connection broke while the body came
    }
    if (options.sha256 !== undefined && sha256Hex(bytes) !== options.sha256.toLowerCase()) {
      throw new IntegrityError(`${key} in ${this.label} does not match its recorded SHA-256`, {
        hint: 'Restore from another tier',
      });
    }
    return bytes;
  }

  async has(id: string): Promise<boolean> {
    return (await this.#head(validKey(id))) !== null;
  }

  async delete(id: string): Promise<void> {
    const key = validKey(id);
    // S3 answers 204 whether or not the key existed: deleting twice is no error.
    await this.#send(`delete ${key}`, (s3) =>
      s3.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key })),
    );
  }

  /** list yields the keys that start with `prefix` in key order (S3 lists in UTF-8 byte order), page by page. */
  async *list(prefix: string): AsyncIterable<string> {
    validPrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.#send(`list ${prefix || '(all)'}`, (s3) =>
        s3.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            MaxKeys: this.#o.pageSize ?? 1000,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        const key = o.Key?.slice(this.#prefix.length);
        // Objects others put beside ours (names that are no key) are not ours to list.
        if (key && o.Key!.startsWith(this.#prefix) && OBJECT_KEY.test(key)) yield key;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * check proves, without writing, that the bucket exists and the credentials may list it under the prefix: a
   * ListObjectsV2 of one key, the permission the catalog needs anyway (HeadBucket needs the same s3:ListBucket on
   * AWS, but answers a 403 or 404 without saying why).
   */
  async check(): Promise<void> {
    await this.#send('check', (s3) =>
      s3.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#prefix || undefined, MaxKeys: 1 })),
    );
  }

  async close(): Promise<void> {
    this.#client?.destroy();
    this.#client = null;
  }

  /** #head is the size of the object under `key`, or null when there is none (and the bucket is there). */
  async #head(key: string): Promise<number | null> {
    const out = await this.#send(
      `head ${key}`,
      (s3) => s3.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key })),
      (err) => (s3Failure(err).status === 404 ? 'absent' : undefined),
    );
    if (out !== 'absent') return out.ContentLength ?? 0;
    // A HEAD answers 404 without a body, so a missing bucket looks like a missing key: ask the bucket once.
    if (!this.#bucketSeen) await this.check();
    return null;
  }

  /** #holds tells whether `key` already holds exactly `bytes`; other bytes there are ConflictError. */
  async #holds(key: string, bytes: Uint8Array): Promise<boolean> {
    const size = await this.#head(key);
    if (size === null) return false;
    if (size !== bytes.length || !(await this.get(key)).equals(bytes)) {
      throw new ConflictError(
        `${this.label} already holds other bytes under ${key}; objects are never overwritten`,
        'key',
      );
    }
    return true;
  }

  /**
   * #send runs one request and types its failure. `expected` picks out failures that are an answer, not an error (a
   * 404 to a HEAD), and returns what the caller gets instead.
   */
  async #send<O, E extends string = never>(
    what: string,
    run: (s3: S3Client) => Promise<O>,
    expected?: (err: unknown) => E | undefined,
  ): Promise<O | E> {
    try {
      const out = await run(this.#s3());
      this.#bucketSeen = true;
      return out;
    } catch (err) {
      const answer = expected?.(err);
      if (answer === undefined) throw s3Error(err, what, this.#where);
      // NoSuchKey proves the bucket is there; a HEAD's bare 404 proves nothing.
      if (s3Failure(err).code === 'NoSuchKey') this.#bucketSeen = true;
      return answer;
    }
  }

  #s3(): S3Client {
    if (this.#client) return this.#client;
    const o = this.#o;
    this.#client = new S3Client({
      region: o.region ?? 'us-east-1',
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      forcePathStyle: o.forcePathStyle ?? o.endpoint !== undefined,
      ...(o.credentials ? { credentials: o.credentials } : {}),
      maxAttempts: 1,
      // Checksums only where the API requires them: several S3-compatible services refuse the SDK's newer defaults.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 5000, requestTimeout: o.timeoutMs ?? 30_000 },
    });
    return this.#client;
  }
}
