import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default on a 2-core machine is one worker, and most test files wait (child processes, sockets,
    // PostgreSQL) more than they compute: two run the suite in far less time than one.
    maxWorkers: 2,
  },
});
