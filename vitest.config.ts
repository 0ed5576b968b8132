import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Three files at a time on the 2-core CI box: most integration files wait on real clients and
    // sockets, so a third worker shortens the run; more starve the clients of CPU.
    maxWorkers: 3,
  },
});
