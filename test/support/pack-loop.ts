/**
 * Child-process fixture for test/durability/local-packs.test.ts. Run as
 *   node --import tsx test/support/pack-loop.ts <dataDir> <segmentBytes>   (the key in LEDGER_ENCRYPTION_KEY)
 * It opens the LocalStore on <dataDir> and, forever, appends a few blocks (printing `ack <height> <hash>` once the
 * append resolved, i.e. the blocks are durable) and packs the settled loose blocks after the packed ones, as the
 * compactor does (printing `packed <to>` once putPack resolved). The parent kills it with SIGKILL.
 */
import { parseKey } from '../../src/crypto/key.js';
import { sealPack, type PackEntry } from '../../src/crypto/packs.js';
import { Sealer } from '../../src/crypto/seal.js';
import { openBlock, openBody, sealBlock } from '../../src/crypto/sealed-blocks.js';
import { makeBlock } from '../../src/ledger/block.js';
import type { Block } from '../../src/ledger/types.js';
import { LocalStore } from '../../src/store/local-store.js';

const [dataDir, segmentBytes] = [process.argv[2]!, Number(process.argv[3])];
const sealer = new Sealer(parseKey(process.env.LEDGER_ENCRYPTION_KEY!));
const { store } = await LocalStore.open(dataDir, { segmentBytes });
const KEEP_LOOSE = 6;
const PACK_BLOCKS = 9;

// The head block, to build the next ones on.
let head: Block | null = null;
let ledgerId = store.ledgerId ?? '';
if (store.height >= 0) {
  for await (const page of store.readPages(store.height, store.height)) {
    if ('blocks' in page) head = openBlock(sealer, ledgerId, page.blocks[0]!);
  }
}
process.stdout.write(`ready ${store.height} ${store.packedThrough()}\n`);

let clock = Date.parse('2026-01-01T00:00:00Z') + 1000 * (store.height + 1);
for (;;) {
  const stored = [];
  for (let i = 0; i < 3; i++) {
    const ts = new Date((clock += 1000)).toISOString();
    const txs = head
      ? [
          {
            type: 'register' as const,
            timestamp: ts,
            property: {
              id: `k${head.index + 1}`,
              name: 'n',
              address: 'a',
              owner: 'o',
              attributes: { pad: 'x'.repeat(80) },
            },
          },
        ]
      : [];
    const enc = makeBlock(head, txs, ts);
    if (!head) ledgerId = enc.block.hash;
    stored.push(sealBlock(sealer, ledgerId, enc));
    head = enc.block;
  }
  await store.append(ledgerId, stored);
  // Pipes are synchronous on Linux: the line is in the pipe before the next step starts.
  process.stdout.write(`ack ${head!.index} ${head!.hash}\n`);
  const from = store.packedThrough() + 1;
  const to = Math.min(from + PACK_BLOCKS - 1, store.height - KEEP_LOOSE);
  if (to - from + 1 < PACK_BLOCKS) continue;
  const entries: PackEntry[] = [];
  for await (const page of store.readPages(from, to)) {
    if (!('blocks' in page)) throw new Error(`blocks ${from}-${to} are packed already`);
    for (const b of page.blocks) entries.push({ height: b.height, hash: b.hash, body: openBody(sealer, ledgerId, b) });
  }
  await store.putPack(ledgerId, sealPack(sealer, ledgerId, entries));
  process.stdout.write(`packed ${to}\n`);
}
