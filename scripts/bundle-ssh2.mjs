// Builds dist/vendor/ssh2.cjs: ssh2 1.17.0 with patches/ssh2+1.17.0.patch applied, bundled with its
// pure-JS dependencies. The package then never patches anything at install (no postinstall, no
// patch-package in a consumer's tree) and its ssh2 cannot be swapped by the consumer's own ssh2:
// src/vendor/ssh2-bundle.ts loads this file through package.json "imports" (#ssh2). ssh2 is a devDependency:
// its native crypto binding ships as a prebuild (scripts/prebuild-native.mjs), so an install runs
// no install script of ssh2's either.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const patchFile = join(root, 'patches', 'ssh2+1.17.0.patch');
const pristine = join(root, 'node_modules', 'ssh2');
const work = join(root, 'build', 'ssh2-patched');

const version = JSON.parse(readFileSync(join(pristine, 'package.json'), 'utf8')).version;
if (version !== '1.17.0') throw new Error(`bundle-ssh2: node_modules/ssh2 is ${version}; the patch is for 1.17.0 (package.json pins it)`);

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
cpSync(join(pristine, 'lib'), join(work, 'lib'), { recursive: true, filter: (src) => !src.includes(`${join('crypto', 'build')}`) });
cpSync(join(pristine, 'package.json'), join(work, 'package.json'));
// The patch's paths are a/node_modules/ssh2/lib/…: strip three components. A patch that does not
// apply cleanly stops the build (no fuzz: an offset hunk would mean a different ssh2).
try {
  execFileSync('patch', ['-p3', '--forward', '--batch', '--fuzz=0', '--no-backup-if-mismatch', '-d', work, '-i', patchFile], { stdio: 'pipe' });
} catch (e) {
  throw new Error(`bundle-ssh2: patches/ssh2+1.17.0.patch does not apply to node_modules/ssh2 (already patched? run npm ci):\n${e.stdout ?? ''}${e.stderr ?? ''}`);
}

const patchSha256 = createHash('sha256').update(readFileSync(patchFile)).digest('hex');
const entry = join(work, 'entry.cjs');
writeFileSync(
  entry,
  `module.exports = {
  ssh2: require('./lib/index.js'),
  crypto: require('./lib/protocol/crypto.js'),
  constants: require('./lib/protocol/constants.js'),
  mlkem768x25519: require('./lib/protocol/mlkem768x25519.js'),
  SFTP: require('./lib/protocol/SFTP.js').SFTP,
  Protocol: require('./lib/protocol/Protocol.js'),
  patch: { ssh2: ${JSON.stringify(version)}, sha256: ${JSON.stringify(patchSha256)} },
};
`,
);

/**
 * ssh2's optional crypto binding (nan: one build per Node ABI): the prebuild for this platform and
 * Node ABI (scripts/prebuild-native.mjs), else an installed ssh2's own build (a checkout's
 * devDependency, or a consumer's ssh2 whose install script ran), else none — ssh2 then falls back
 * to Node's crypto and the server warns at start.
 */
const bindingLoader = `const { join } = require('path');
const tried = [
  join(__dirname, '..', '..', 'prebuilds', 'ssh2', process.platform + '-' + process.arch, 'sshcrypto.abi' + process.versions.modules + '.node'),
  'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
];
let binding;
for (const file of tried) {
  try { binding = require(file); break; } catch {}
}
if (binding === undefined) throw new Error('no sshcrypto binding for this platform and Node version');
module.exports = binding;
`;
const nativeBinding = {
  name: 'sshcrypto-binding',
  setup(b) {
    b.onResolve({ filter: /sshcrypto\.node$/ }, () => ({ path: 'sshcrypto-binding', namespace: 'sftp-chroot' }));
    b.onLoad({ filter: /.*/, namespace: 'sftp-chroot' }, () => ({ contents: bindingLoader, loader: 'js' }));
  },
};

await build({
  entryPoints: [entry],
  outfile: join(root, 'dist', 'vendor', 'ssh2.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Our own dependency (ESM, loaded with require(esm)); cpu-features is optional and only orders ciphers.
  external: ['@noble/post-quantum', '@noble/post-quantum/*', 'cpu-features'],
  plugins: [nativeBinding],
  legalComments: 'inline',
  banner: { js: `// ssh2 ${version} (MIT, Brian White) with sftp-chroot's patches/ssh2+1.17.0.patch (sha256 ${patchSha256}), bundled by scripts/bundle-ssh2.mjs.` },
  logLevel: 'warning',
});
rmSync(work, { recursive: true, force: true });
