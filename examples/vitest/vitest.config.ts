import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Runs only this folder's example (the repo's own vitest.config.ts includes test/** only).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  cacheDir: fileURLToPath(new URL('../../node_modules/.vite/examples', import.meta.url)),
  test: { include: ['*.test.ts'] },
});
