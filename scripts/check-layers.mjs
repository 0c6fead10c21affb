#!/usr/bin/env node
// check-layers: fails (exit 1) when a module under src/ imports, at runtime, a module of a higher layer, or when two
// folders import each other. The layers, bottom up, are docs/ARCHITECTURE.md's; `import type` is exempt (it leaves
// no trace in the built code), every other import and export-from counts.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const SRC = new URL('../src/', import.meta.url).pathname;

/** LAYERS maps a folder (or a top-level file) of src/ to its layer; a module may import its own layer or below. */
const LAYERS = {
  util: 0,
  'errors.ts': 0,
  'log.ts': 0,
  ledger: 1,
  crypto: 2,
  store: 3,
  objects: 3,
  db: 3,
  pointers: 3,
  tiers: 4,
  engine: 5,
  service: 6,
  'config.ts': 6,
  server: 7,
  cli: 7,
  doctor: 7,
  'index.ts': 7,
};

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function layerOf(rel) {
  const top = rel.split('/')[0];
  if (!(top in LAYERS)) throw new Error(`src/${rel}: its folder has no layer in scripts/check-layers.mjs`);
  return LAYERS[top];
}

const problems = [];
const folderEdges = new Map();
const IMPORT =
  /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/gm;
for (const path of files(SRC)) {
  const rel = relative(SRC, path);
  const text = readFileSync(path, 'utf8');
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const target = relative(SRC, normalize(join(dirname(path), spec))).replace(/\.js$/, '.ts');
    if (target.startsWith('..')) continue;
    const [from, to] = [layerOf(rel), layerOf(target)];
    if (to > from) problems.push(`src/${rel} (layer ${from}) imports src/${target} (layer ${to}): a layer reaching up`);
    // A top-level file (errors.ts, config.ts) is a unit of its own, not one folder with the others.
    const unit = (f) => (dirname(f) === '.' ? f : dirname(f));
    const [fa, fb] = [unit(rel), unit(target)];
    if (fa !== fb) {
      if (!folderEdges.has(fa)) folderEdges.set(fa, new Map());
      folderEdges.get(fa).set(fb, `src/${rel} -> src/${target}`);
    }
  }
}
for (const [a, outs] of folderEdges) {
  for (const [b, why] of outs) {
    const back = folderEdges.get(b)?.get(a);
    if (back && a < b) problems.push(`folders ${a}/ and ${b}/ import each other: ${why}; ${back}`);
  }
}
if (problems.length > 0) {
  process.stderr.write(`check-layers: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(
  `check-layers: ${files(SRC).length} modules, no import reaches up a layer, no two folders import each other\n`,
);
