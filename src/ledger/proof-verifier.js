// pawledger proof verifier: one dependency-free ES module, the same file for Node (20+) and browsers (Web Crypto).
// It checks a property's inclusion proof and a consistency proof between two heads with nothing but the proof
// itself: no server, no key, no data folder. The formats are docs/FORMAT.md's "Proofs"; types in proof-verifier.d.ts.
//
// The chain's accumulator is an RFC 6962 Merkle tree over the block hashes: leaf = SHA-256(0x00 || hash bytes),
// node = SHA-256(0x01 || left || right), split at the largest power of two below the size. A block's transactions
// hash the same way (leaf = SHA-256(0x00 || canonical JSON of the transaction)), and a block's hash is the SHA-256 of
// the canonical JSON of {index, merkleRoot, previousHash, timestamp, transactions}.
//
// A chain's root commits to its size as well as its tree: root = SHA-256(0x02 || size as u64 big-endian || tree
// root), size = height + 1 (chainRoot). An RFC 6962 path alone does not fix the tree's size (the last leaf's path of
// a tree of 6 leaves also verifies as the last leaf of 7, and so do many consistency paths), RFC 6962 has the size
// signed beside the root; here the root alone is trusted, so it holds the size, and a proof whose height is changed
// leads to another root.

/** PROOF_FORMAT names an inclusion proof's format and version. */
export const PROOF_FORMAT = 'pawledger-proof/2';
/** CONSISTENCY_FORMAT names a consistency proof's format and version. */
export const CONSISTENCY_FORMAT = 'pawledger-consistency/2';

const HEX64 = /^[0-9a-f]{64}$/;
const encoder = new TextEncoder();

/** canonicalJson renders a JSON value as the ledger hashes it: keys sorted by UTF-16 code unit, no whitespace. */
export function canonicalJson(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((x) => canonicalJson(x)).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('not a JSON number');
  return JSON.stringify(value);
}

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

function concat(prefix, ...parts) {
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  out[0] = prefix;
  let offset = 1;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** leafHash is an RFC 6962 leaf: SHA-256(0x00 || bytes), as hex. */
export async function leafHash(bytes) {
  return bytesToHex(await sha256(concat(0, bytes)));
}

/** nodeHash is an RFC 6962 inner node: SHA-256(0x01 || left || right), of two hex hashes, as hex. */
export async function nodeHash(left, right) {
  return bytesToHex(await sha256(concat(1, hexToBytes(left), hexToBytes(right))));
}

/** chainRoot is a chain's root: SHA-256(0x02 || size u64 big-endian || tree root), of a hex tree root, as hex. */
export async function chainRoot(size, treeRoot) {
  const sizeBytes = new Uint8Array(8);
  new DataView(sizeBytes.buffer).setBigUint64(0, BigInt(size));
  return bytesToHex(await sha256(concat(2, sizeBytes, hexToBytes(treeRoot))));
}

const isHex = (h) => typeof h === 'string' && HEX64.test(h);
const isCount = (n) => Number.isSafeInteger(n) && n >= 0;
const half = (n) => Math.floor(n / 2);

/**
 * verifyInclusion checks that `leaf` (a leaf hash, hex) is leaf `index` of the tree of `size` leaves whose root is
 * `root`, by the audit path `path` (RFC 9162, 2.1.3.2).
 */
export async function verifyInclusion(index, size, leaf, path, root) {
  return (await inclusionRoot(index, size, leaf, path)) === root;
}

// The tree root an audit path leads to (RFC 9162, 2.1.3.2), or null when the path does not fit (index, size).
async function inclusionRoot(index, size, leaf, path) {
  if (!isCount(index) || !isCount(size) || index >= size || !Array.isArray(path) || !path.every(isHex)) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) [fn, sn] = [half(fn), half(sn)];
    } else r = await nodeHash(r, p);
    [fn, sn] = [half(fn), half(sn)];
  }
  return sn === 0 ? r : null;
}

/** verifyChainInclusion is verifyInclusion against a chain root (chainRoot), which binds `size` too. */
export async function verifyChainInclusion(index, size, leaf, path, root) {
  const tree = await inclusionRoot(index, size, leaf, path);
  return tree !== null && (await chainRoot(size, tree)) === root;
}

/**
 * verifyConsistency checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of `size2`
 * leaves with root `root2`, by the consistency path `path` (RFC 9162, 2.1.4.2).
 */
export async function verifyConsistency(size1, size2, root1, root2, path) {
  if (!isHex(root1) || !isHex(root2)) return false;
  if (size1 === size2)
    return isCount(size1) && size1 >= 1 && Array.isArray(path) && path.length === 0 && root1 === root2;
  // A first tree that is a whole subtree of the second is its own first node.
  const whole = isCount(size1) && (size1 & (size1 - 1)) === 0 && size1 < 2 ** 31;
  const roots = await consistencyRoots(size1, size2, whole && Array.isArray(path) ? [root1, ...path] : path);
  return roots !== null && roots.first === root1 && roots.second === root2;
}

// The two tree roots a consistency path leads to (RFC 9162, 2.1.4.2, `nodes` with the first tree's root in front
// when that tree is a whole subtree), or null when the path does not fit (size1, size2).
async function consistencyRoots(size1, size2, nodes) {
  if (!isCount(size1) || !isCount(size2) || size1 < 1 || size1 >= size2) return null;
  if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every(isHex)) return null;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) [fn, sn] = [half(fn), half(sn)];
  let fr = nodes[0];
  let sr = nodes[0];
  for (const c of nodes.slice(1)) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) [fn, sn] = [half(fn), half(sn)];
    } else sr = await nodeHash(sr, c);
    [fn, sn] = [half(fn), half(sn)];
  }
  return sn === 0 ? { first: fr, second: sr } : null;
}

/**
 * verifyChainConsistency checks that the chain of `size1` blocks with chain root `root1` (chainRoot) is a prefix of
 * the chain of `size2` blocks with chain root `root2`. `path` is RFC 6962's PROOF(size1, size2), with the first
 * tree's root in front when size1 is a power of two (a chain root does not give it away).
 */
export async function verifyChainConsistency(size1, size2, root1, root2, path) {
  if (!isHex(root1) || !isHex(root2) || !isCount(size1) || size1 < 1) return false;
  if (size1 === size2) return Array.isArray(path) && path.length === 0 && root1 === root2;
  const roots = await consistencyRoots(size1, size2, path);
  if (roots === null) return false;
  return (await chainRoot(size1, roots.first)) === root1 && (await chainRoot(size2, roots.second)) === root2;
}

// A plain object with exactly these keys (a proof with an unknown or missing field is not a proof).
function shaped(value, keys) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const own = Object.keys(value).sort();
  return own.length === keys.length && [...keys].sort().every((k, i) => own[i] === k);
}

const subjectOf = (tx) => (tx?.type === 'register' ? tx.property?.id : tx?.propertyId);

class Invalid extends Error {}
function check(ok, reason) {
  if (!ok) throw new Invalid(reason);
}

// The Merkle root of a block's transactions (RFC 6962, as merkle.ts computes it).
async function transactionsRoot(leaves) {
  if (leaves.length === 0) return bytesToHex(await sha256(new Uint8Array(0)));
  let level = leaves;
  // Bottom up, pairing left to right and carrying an odd last node up: the same tree as the recursive split.
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(await nodeHash(level[i], level[i + 1]));
    if (level.length % 2 === 1) next.push(level.at(-1));
    level = next;
  }
  return level[0];
}

async function checkBlock(block, propertyId, head, previousIndex) {
  const keys = ['hash', 'index', 'merkleRoot', 'path', 'previousHash', 'timestamp', 'transactions', 'txPaths'];
  check(
    shaped(block, keys),
    'a block must have exactly the fields hash, index, merkleRoot, path, previousHash, timestamp, transactions, txPaths',
  );
  const { index } = block;
  const where = `block ${index}`;
  check(
    isCount(index) && index > previousIndex && index <= head.height,
    `${where}: index out of order or past the head`,
  );
  check(
    isHex(block.hash) && isHex(block.merkleRoot) && isHex(block.previousHash),
    `${where}: a hash is not 64 hex digits`,
  );
  check(typeof block.timestamp === 'string', `${where}: timestamp must be a string`);
  const txs = block.transactions;
  check(Array.isArray(txs) && txs.length > 0, `${where}: no transactions`);
  check(Array.isArray(block.txPaths) && block.txPaths.length === txs.length, `${where}: one txPath per transaction`);
  const leaves = [];
  for (const [i, tx] of txs.entries()) {
    check(subjectOf(tx) === propertyId, `${where}: transaction ${i} is not about property ${propertyId}`);
    const leaf = await leafHash(encoder.encode(canonicalJson(tx)));
    const ok = await verifyInclusion(i, txs.length, leaf, block.txPaths[i], block.merkleRoot);
    check(ok, `${where}: transaction ${i} is not in the block's Merkle root`);
    leaves.push(leaf);
  }
  check(
    (await transactionsRoot(leaves)) === block.merkleRoot,
    `${where}: the Merkle root does not match its transactions`,
  );
  const { hash, merkleRoot, previousHash, timestamp } = block;
  const body = canonicalJson({ index, merkleRoot, previousHash, timestamp, transactions: txs });
  check(bytesToHex(await sha256(encoder.encode(body))) === hash, `${where}: its hash does not match its contents`);
  const leaf = await leafHash(hexToBytes(hash));
  const inTree = await verifyChainInclusion(index, head.height + 1, leaf, block.path, head.root);
  check(inTree, `${where}: its path does not lead to the root at height ${head.height}`);
}

function checkHeadShape(head) {
  check(shaped(head, ['hash', 'height', 'path', 'root']), 'head must have exactly the fields hash, height, path, root');
  check(isCount(head.height) && isHex(head.hash) && isHex(head.root), 'head: height or a hash is malformed');
}

/**
 * verifyProof checks an inclusion proof (a parsed object): every transaction is about the property, hashes into its
 * block, and every block and the head lead by their paths to the head's root. With `root`, that root must be the
 * proof's; with `consistency`, the proof's head must be its `from` and the root it leads to its `to` (and `root`, when
 * given, that one). It never throws: the result says ok, or why not.
 */
export async function verifyProof(proof, options = {}) {
  try {
    check(
      shaped(proof, ['blocks', 'format', 'head', 'propertyId']),
      'not a pawledger proof: unexpected or missing fields',
    );
    check(proof.format === PROOF_FORMAT, `format must be ${PROOF_FORMAT}`);
    check(typeof proof.propertyId === 'string' && proof.propertyId.length > 0, 'propertyId must be a string');
    const { head } = proof;
    checkHeadShape(head);
    const headLeaf = await leafHash(hexToBytes(head.hash));
    const headOk = await verifyChainInclusion(head.height, head.height + 1, headLeaf, head.path, head.root);
    check(headOk, `the head's path does not lead to its root at height ${head.height}`);
    check(Array.isArray(proof.blocks) && proof.blocks.length > 0, 'the proof holds no blocks');
    let previous = -1;
    for (const block of proof.blocks) {
      await checkBlock(block, proof.propertyId, head, previous);
      previous = block.index;
    }
    let trusted = { height: head.height, root: head.root };
    if (options.consistency !== undefined) {
      const c = await verifyConsistencyProof(options.consistency);
      check(c.ok, c.ok ? '' : `consistency proof: ${c.reason}`);
      check(
        c.from.height === head.height && c.from.root === head.root,
        "the consistency proof does not start at the proof's head",
      );
      trusted = c.to;
    }
    if (options.root !== undefined) {
      const wanted = String(options.root).toLowerCase();
      check(
        trusted.root === wanted,
        `the proof leads to root ${trusted.root} at height ${trusted.height}, not ${wanted}`,
      );
    }
    const transactions = proof.blocks.flatMap((b) => b.transactions);
    return { ok: true, propertyId: proof.propertyId, head: trusted, blocks: proof.blocks.length, transactions };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    return { ok: false, reason: `not a valid proof (${err instanceof Error ? err.message : String(err)})` };
  }
}

/** verifyConsistencyProof checks a consistency proof (a parsed object): the chain at `from` is a prefix of `to`'s. */
export async function verifyConsistencyProof(proof) {
  try {
    check(
      shaped(proof, ['format', 'from', 'path', 'to']),
      'not a pawledger consistency proof: unexpected or missing fields',
    );
    check(proof.format === CONSISTENCY_FORMAT, `format must be ${CONSISTENCY_FORMAT}`);
    for (const end of [proof.from, proof.to]) {
      check(
        shaped(end, ['height', 'root']) && isCount(end.height) && isHex(end.root),
        'from and to must be {height, root}',
      );
    }
    const { from, to } = proof;
    const ok = await verifyChainConsistency(from.height + 1, to.height + 1, from.root, to.root, proof.path);
    check(ok, `the chain at height ${from.height} is not shown to be a prefix of the chain at height ${to.height}`);
    return { ok: true, from: { height: from.height, root: from.root }, to: { height: to.height, root: to.root } };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.message };
    return { ok: false, reason: `not a valid consistency proof (${err instanceof Error ? err.message : String(err)})` };
  }
}

/**
 * parseProofText parses a proof file: its canonical JSON, optionally followed by one newline, byte for byte (what
 * `pawledger proof` and the routes write), so no byte of a proof goes unchecked. It throws a plain Error otherwise.
 */
export function parseProofText(text) {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  let value;
  try {
    value = JSON.parse(body);
  } catch {
    throw new Error('the file is not JSON');
  }
  if (canonicalJson(value) !== body)
    throw new Error('the file is not in canonical form (was it edited or reformatted?)');
  return value;
}

/** verifyProofText is verifyProof over a proof file's text (parseProofText); options.consistency may be text too. */
export async function verifyProofText(text, options = {}) {
  try {
    const proof = parseProofText(text);
    const consistency =
      typeof options.consistency === 'string' ? parseProofText(options.consistency) : options.consistency;
    return await verifyProof(proof, { ...options, consistency });
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
