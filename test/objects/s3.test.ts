import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, NotFoundError, UnavailableError } from '../../src/errors.js';
import { retryingStore } from '../../src/objects/retry.js';
import { S3Store, type S3StoreOptions } from '../../src/objects/s3.js';
import { RetryAfterError } from '../../src/util/retry.js';
import { objectStoreSuite } from '../conformance/object-store-suite.js';
import { closedPort } from '../support/object-stores.js';
import {
  BAD_SIGNATURE,
  S3RVER_CREDENTIALS,
  type S3FaultProxy,
  type S3rverProcess,
  SLOW_DOWN,
  startS3FaultProxy,
  startS3rver,
} from '../support/s3.js';

const BUCKET = 'pawledger-test';
const PREFIX = 'ledger-backups';
const PRECONDITION_FAILED = {
  status: 412,
  code: 'PreconditionFailed',
  message: 'At least one of the pre-conditions you specified did not hold',
};
const WRONG = { accessKeyId: 'AKIAWRONGKEY0000', secretAccessKey: 'wrong-secret-0123456789abcdef' };
let s3: S3rverProcess;
let proxy: S3FaultProxy;
let down: number;
beforeAll(async () => {
  s3 = await startS3rver([BUCKET]);
  proxy = await startS3FaultProxy(s3.endpoint);
  down = await closedPort();
});
afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
});

const store = (o: Partial<S3StoreOptions> = {}) =>
  new S3Store({ bucket: BUCKET, prefix: PREFIX, endpoint: proxy.url, credentials: S3RVER_CREDENTIALS, ...o });

objectStoreSuite('s3 (s3rver)', {
  contentAddressed: false,
  list: true,
  create: () => store(),
  tamper: (id) => s3.tamper(BUCKET, `${PREFIX}/${id}`),
  unreachable: () => store({ endpoint: `http://127.0.0.1:${down}` }),
  failNext: (count) => proxy.failNext(count),
  misconfigured: () => store({ credentials: WRONG }),
  secrets: [WRONG.secretAccessKey, S3RVER_CREDENTIALS.secretAccessKey],
});

describe('S3Store against s3rver', () => {
  const rejection = (p: Promise<unknown>) =>
    p.then(
      () => new Error('expected a rejection'),
      (err: Error) => err,
    );
  const all = async (it: AsyncIterable<string>) => {
    const out: string[] = [];
    for await (const id of it) out.push(id);
    return out;
  };
  const fresh = () => `c${randomBytes(5).toString('hex')}`;

  it('keeps keys under S3_PREFIX and names bucket, prefix and host, never a key, in its label', async () => {
    const s = store();
    const key = `${fresh()}/a.bin`;
    await s.put(Buffer.from('a'), { key, label: 'a' });
    const raw = store({ prefix: '' });
    expect(await raw.has(`${PREFIX}/${key}`)).toBe(true);
    expect(await all(raw.list(`${PREFIX}/${key.split('/')[0]}`))).toEqual([`${PREFIX}/${key}`]);
    expect(s.label).toBe(`S3 bucket ${BUCKET}/${PREFIX} at ${new URL(proxy.url).host}`);
    expect(new S3Store({ bucket: BUCKET, region: 'eu-west-3' }).label).toBe(
      `S3 bucket ${BUCKET} at s3.eu-west-3.amazonaws.com`,
    );
  });

  it('never overwrites, though s3rver ignores If-None-Match: a HEAD finds the key before the PUT', async () => {
    const s = store();
    const key = `${fresh()}/kept.bin`;
    await s.check(); // a new store asks once, at its first miss, whether the bucket is there: not this time
    const seen = proxy.seen.length;
    await s.put(Buffer.from('first'), { key, label: 'k' });
    // The write asks for If-None-Match: * (AWS, R2 and MinIO refuse it with 412 when the key exists).
    expect(proxy.seen.slice(seen)).toEqual([
      `HEAD /${BUCKET}/${PREFIX}/${key}`,
      `PUT /${BUCKET}/${PREFIX}/${key} If-None-Match: *`,
    ]);
    expect(await rejection(s.put(Buffer.from('other'), { key, label: 'k' }))).toBeInstanceOf(ConflictError);
    expect(await s.put(Buffer.from('first'), { key, label: 'k' })).toBe(key);
    expect((await s.get(key)).toString()).toBe('first');
  });

  it('on 412 from a service that honours If-None-Match, compares the bytes there: same is success, other is conflict', async () => {
    // A writer that got there between our HEAD and our PUT: the HEAD saw nothing, and AWS answers the PUT 412.
    const raced = () => {
      proxy.failNext(1, { status: 404, code: 'NotFound', message: '' }, (req) => req.method === 'HEAD');
      proxy.failNext(1, PRECONDITION_FAILED, (req) => req.method === 'PUT');
    };
    const s = store();
    for (const [theirs, ours, wins] of [
      ['same', 'same', true],
      ['theirs', 'mine', false],
    ] as const) {
      const key = `${fresh()}/raced.bin`;
      await store().put(Buffer.from(theirs), { key, label: 'theirs' });
      raced();
      const put = s.put(Buffer.from(ours), { key, label: 'ours' });
      if (wins) expect(await put).toBe(key);
      else expect(await rejection(put)).toBeInstanceOf(ConflictError);
      expect((await s.get(key)).toString()).toBe(theirs);
    }
  });

  it('drops If-None-Match for good when the service answers it 501 NotImplemented', async () => {
    const s = store();
    const notImplemented = {
      status: 501,
      code: 'NotImplemented',
      message: 'A header you provided implies functionality that is not implemented',
    };
    proxy.failNext(1, notImplemented, (req) => req.method === 'PUT' && req.headers['if-none-match'] !== undefined);
    const seen = proxy.seen.length;
    const key = `${fresh()}/plain.bin`;
    await s.put(Buffer.from('x'), { key, label: 'p' });
    await s.put(Buffer.from('y'), { key: `${key}2`, label: 'p' });
    expect(proxy.seen.slice(seen).filter((l) => l.startsWith('PUT'))).toEqual([
      `PUT /${BUCKET}/${PREFIX}/${key} If-None-Match: *`,
      `PUT /${BUCKET}/${PREFIX}/${key}`,
      `PUT /${BUCKET}/${PREFIX}/${key}2`,
    ]);
    expect((await s.get(key)).toString()).toBe('x');
  });

  it('lists page by page in key order, and retryingStore resumes a listing a SlowDown cut', async () => {
    const s = store({ pageSize: 2 });
    const dir = fresh();
    const keys = ['a', 'b', 'c', 'd', 'e'].map((k) => `${dir}/${k}.bin`);
    for (const key of keys) await s.put(Buffer.from(key), { key, label: key });
    expect(await all(s.list(`${dir}/`))).toEqual(keys);
    const lists = (req: { method?: string; url?: string }) => req.method === 'GET' && /list-type=2/.test(req.url ?? '');
    // The store alone: a SlowDown on the second page fails the listing (it never retries by itself).
    const it = s.list(`${dir}/`)[Symbol.asyncIterator]();
    expect([(await it.next()).value, (await it.next()).value]).toEqual(keys.slice(0, 2));
    proxy.failNext(1, SLOW_DOWN, lists);
    expect(await rejection(it.next())).toBeInstanceOf(UnavailableError);
    // Through the decorator: the same cut, and every key comes once, in order.
    const got: string[] = [];
    for await (const k of retryingStore(s, { attempts: 3, baseMs: 1, maxMs: 5 }).list!(`${dir}/`)) {
      got.push(k);
      if (got.length === 2) proxy.failNext(1, SLOW_DOWN, lists);
    }
    expect(got).toEqual(keys);
  });

  it('never returns a body cut short: a broken download is UnavailableError, and retried', async () => {
    const s = store();
    const key = `${fresh()}/whole.bin`;
    const bytes = randomBytes(200_000);
    await s.put(bytes, { key, label: 'w' });
    proxy.cutNext(1);
    const err = await rejection(s.get(key));
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err.message).toMatch(/did not complete get .*whole\.bin/);
    proxy.cutNext(1);
    expect((await retryingStore(s, { attempts: 3, baseMs: 1, maxMs: 5 }).get(key)).equals(bytes)).toBe(true);
  });

  it('types what the service says: wrong key or secret, a missing bucket, throttling with Retry-After', async () => {
    const wrongKey = await rejection(store({ credentials: WRONG }).check());
    expect(wrongKey).toBeInstanceOf(ConfigError);
    expect(wrongKey.message).toMatch(/refused the credentials for check \(403 InvalidAccessKeyId\)/);
    expect((wrongKey as ConfigError).hint).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    proxy.always = BAD_SIGNATURE;
    try {
      const err = await rejection(store().put(Buffer.from('x'), { key: `${fresh()}/x`, label: 'x' }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/403/);
    } finally {
      proxy.always = null;
    }
    const noBucket = store({ bucket: 'no-such-bucket' });
    for (const call of [
      () => noBucket.check(),
      () => noBucket.has('x'),
      () => noBucket.get('x'),
      () => all(noBucket.list('')),
    ]) {
      const err = await rejection(call());
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/the bucket no-such-bucket does not exist/);
    }
    proxy.failNext(1, { ...SLOW_DOWN, retryAfterS: 2 });
    const slow = await rejection(store().check());
    expect(slow).toBeInstanceOf(RetryAfterError);
    expect((slow as RetryAfterError).retryAfterMs).toBe(2000);
    proxy.failNext(1, { status: 500, code: 'InternalError', message: 'We encountered an internal error.' });
    expect(await rejection(store().get('x'))).toBeInstanceOf(UnavailableError);
    expect(await rejection(store().get(`${fresh()}/absent`))).toBeInstanceOf(NotFoundError);
  });

  it('refuses a configuration that cannot work before sending anything, saying what to set', () => {
    for (const o of [
      { bucket: 's3://bucket' },
      { endpoint: 'ftp://host' },
      { endpoint: 'https://key:secret@host' },
      { endpoint: 'https://host/bucket' },
      { prefix: 'a/../b' },
      { region: 'US East' },
    ]) {
      let err: unknown;
      try {
        store(o);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(o)).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).not.toContain('secret');
    }
    expect(store({ prefix: '/a/b/' }).label).toContain(`${BUCKET}/a/b at`);
  });
});
