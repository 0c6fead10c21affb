/**
 * profile-summary: prints where a CPU profile's time went, per operation, as save-cost --profile does.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [operations=1]
 *
 * Works on profiles from `node --cpu-prof` too (e.g. `node --cpu-prof --cpu-prof-interval 100 --import tsx ...`).
 */
import { readFile } from 'node:fs/promises';
import { summarizeProfile, type CpuProfile } from './lib/profile.js';

const [file, opsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [operations]\n');
  process.exit(2);
}
const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
const deltas = [...profile.timeDeltas].sort((a, b) => a - b);
const intervalUs = Math.round(deltas[Math.floor(deltas.length / 2)] ?? 0);
process.stdout.write(`${summarizeProfile(profile, process.cwd(), Number(opsArg ?? 1), intervalUs)}\n`);
