// Builds the native parts for linux-x64 and linux-arm64 into prebuilds/ (run by `npm pack` through
// prepack, and by CI), so installing the package runs no install script and needs no compiler:
// - jail.napi.glibc.node: the jail addon (N-API: one build serves every Node version), loaded by
//   node-gyp-build (src/native/addon.ts);
// - ssh2/linux-<arch>/sshcrypto.abi<N>.node (apart: node-gyp-build picks one addon per folder): ssh2's optional crypto binding, built from the ssh2 devDependency's
//   own source (nan: one build per Node ABI, this Node's), loaded by the bundled ssh2
//   (scripts/bundle-ssh2.mjs); on another Node version the server runs without it and warns.
// arm64 is cross-compiled (Debian: gcc-aarch64-linux-gnu g++-aarch64-linux-gnu).
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { arch as hostArch } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js', { paths: [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules'), root] });
const CROSS = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };
// The host's build goes last, so build/ is left as it (node-gyp-build prefers build/Release).
const targets = (process.argv.slice(2).length ? process.argv.slice(2) : ['x64', 'arm64']).sort((a, b) => (a === hostArch()) - (b === hostArch()));
const abi = process.versions.modules;
const opensslMajor = /^\d+/.exec(process.versions.openssl)[0];

function toolchain(arch) {
  if (arch === hostArch()) return {};
  const prefix = CROSS[arch];
  if (!prefix) throw new Error(`prebuild-native: no cross compiler known for ${arch}`);
  try {
    execFileSync(`${prefix}-g++`, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`prebuild-native: ${prefix}-gcc/g++ are missing (Debian: apt-get install gcc-${prefix.replaceAll('_', '-')} g++-${prefix.replaceAll('_', '-')}); they build the linux-${arch} prebuilds`);
  }
  return { CC: `${prefix}-gcc`, CXX: `${prefix}-g++`, LINK: `${prefix}-g++`, AR: `${prefix}-ar` };
}

// The running Node's own headers when its prefix has them (no download; npm passes its nodedir too).
const prefix = dirname(dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);

function gyp(cwd, arch, extra = []) {
  execFileSync(process.execPath, [nodeGyp, 'rebuild', `--arch=${arch}`, ...(nodedir ? [`--nodedir=${nodedir}`] : []), ...extra], { cwd, env: { ...process.env, ...toolchain(arch) }, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The ELF machine of a built file (a cross build that silently produced the host's is caught here). */
function elfMachine(file) {
  const b = readFileSync(file);
  return { 0x3e: 'x64', 0xb7: 'arm64' }[b.readUInt16LE(18)] ?? `machine ${b.readUInt16LE(18)}`;
}

function place(built, arch, file) {
  if (elfMachine(built) !== arch) throw new Error(`prebuild-native: the ${arch} build of ${file} is ${elfMachine(built)}`);
  mkdirSync(join(root, 'prebuilds', dirname(file)), { recursive: true });
  copyFileSync(built, join(root, 'prebuilds', file));
  process.stdout.write(`prebuilds/${file}\n`);
}

rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
// ssh2's binding, from the devDependency's source, built beside the repo's node_modules (nan).
const cryptoDir = join(root, 'build', 'sshcrypto');
for (const arch of targets) {
  rmSync(cryptoDir, { recursive: true, force: true });
  cpSync(join(root, 'node_modules', 'ssh2', 'lib', 'protocol', 'crypto'), cryptoDir, { recursive: true, filter: (p) => !p.includes(`${join('crypto', 'build')}`) });
  gyp(cryptoDir, arch, [`--real_openssl_major=${opensslMajor}`]);
  place(join(cryptoDir, 'build', 'Release', 'sshcrypto.node'), arch, `ssh2/linux-${arch}/sshcrypto.abi${abi}.node`);
  rmSync(cryptoDir, { recursive: true, force: true });

  gyp(root, arch);
  // node-gyp-build's tags: N-API (any Node version), glibc (musl systems build from source).
  place(join(root, 'build', 'Release', 'jail.node'), arch, `linux-${arch}/jail.napi.glibc.node`);
}
// Never leave a foreign build in build/: node-gyp-build would prefer it to the prebuild.
if (targets.at(-1) !== hostArch()) rmSync(join(root, 'build'), { recursive: true, force: true });
