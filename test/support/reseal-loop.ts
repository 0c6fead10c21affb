/**
 * Child-process fixture for test/durability/local-reseal.test.ts. Run as
 *   node --import tsx test/support/reseal-loop.ts <dataDir> <segmentBytes> <limit> loop|finish
 * with the old key in OLD_KEY and the new one in NEW_KEY. It opens the LocalStore on <dataDir> with the keyring of
 * both (the new key active) and, in `loop` mode, forever: takes one key-rotation step of at most <limit> objects
 * (printing `step <resealed> <remaining>` once it resolved) and appends one block sealed with the new key (printing
 * `ack <height> <hash>` once the append resolved, i.e. the block is durable), as the service does between saves. The
 * parent kills it with SIGKILL. In `finish` mode it steps until nothing remains, closes the store and prints `done`.
 */
import { parseKey } from '../../src/crypto/key.js';
import { Sealer } from '../../src/crypto/seal.js';
import { LocalStore } from '../../src/store/local-store.js';
import { nextBlocks, tipOf } from './reseal-chain.js';

const [dataDir, segmentBytes, limit, mode] = [
  process.argv[2]!,
  Number(process.argv[3]),
  Number(process.argv[4]),
  process.argv[5],
];
const ring = new Sealer(parseKey(process.env.NEW_KEY!), [parseKey(process.env.OLD_KEY!)]);
const { store } = await LocalStore.open(dataDir, { segmentBytes });
const tip = await tipOf(store, ring);
process.stdout.write(`ready ${store.height}\n`);

if (mode === 'finish') {
  let steps = 0;
  while ((await store.reseal(ring, limit)).remaining > 0) steps++;
  await store.close();
  process.stdout.write(`done ${steps}\n`);
} else {
  for (;;) {
    const step = await store.reseal(ring, limit);
    // Pipes are synchronous on Linux: the line is in the pipe before the next step starts.
    process.stdout.write(`step ${step.resealed} ${step.remaining}\n`);
    await store.append(tip.ledgerId, nextBlocks(tip, ring, 1));
    process.stdout.write(`ack ${tip.head!.index} ${tip.head!.hash}\n`);
  }
}
