#!/usr/bin/env node
// The installed command: runs the compiled CLI (built by `npm install` through the prepare script).
import { main } from '../dist/cli/main.js';

// Everything pawledger writes (the local store, the embedded database, keys, exports) is for this user only.
process.umask(0o077);

// A reader that stops early (`pawledger backups list | head`) has what it wanted: not a crash.
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
