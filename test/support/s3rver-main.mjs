// Runs s3rver (a real S3 server over a folder) for the tests, in a process of its own: s3rver signs its
// ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 offers only with --openssl-legacy-provider,
// and that flag belongs to this process, not to the test runner's. Prints `{"port":N}` once it listens.
//
//   node --openssl-legacy-provider test/support/s3rver-main.mjs <folder> <bucket>...
import S3rver from 's3rver';

const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: buckets.map((name) => ({ name })),
});
// S3 lists keys in UTF-8 byte order; s3rver walks its folders instead, so `x/a/z` comes before `x/a-b/y` and `a-b`
// before `a`. Listing everything under the prefix, then sorting and paging, makes it list as S3 does.
const listObjects = server.store.listObjects.bind(server.store);
server.store.listObjects = async (bucket, { maxKeys = Number.POSITIVE_INFINITY, startAfter = '', ...options }) => {
  const all = await listObjects(bucket, options);
  const objects = all.objects
    .filter((o) => o.key > startAfter)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { ...all, objects: objects.slice(0, maxKeys), isTruncated: objects.length > maxKeys };
};
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
// The parent holds our stdin open: when it goes away (a crashed test run), so do we.
process.stdin.on('end', () => process.exit(0)).resume();
