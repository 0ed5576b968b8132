// Builds CommonJS entry points (dist/cjs/*.cjs) for suites that run under jest or require():
// the same sources, bundled with their imports, with import.meta.url mapped to the bundle's file.
import { build } from 'esbuild';

await build({
  entryPoints: { index: 'src/index.ts', testing: 'src/testing.ts' },
  outdir: 'dist/cjs',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  define: { 'import.meta.url': '__cjsImportMetaUrl' },
  banner: { js: "const __cjsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
