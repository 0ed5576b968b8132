// Installs the package as a stranger would and uses it (run by .ci/run after the suite):
//   npm pack; the tarball's contents; `npm install -D` into a fresh project (no warning of ours, no
//   compiler needed for the jail addon); the README's vitest, jest, node:test and mocha examples
//   and a TypeScript (nodenext, strict, no skipLibCheck) check of the vitest one; `npx sftp-chroot
//   --help`; a daemon from a config, used by an SFTP client and stopped with SIGTERM; a broken
//   bundled ssh2 refused at start; `npm install -g` into a temporary prefix + check-config; the same
//   examples installed with pnpm and yarn (fetched from the npm registry) when those can be fetched.
// Usage: node scripts/test-install.mjs [--keep]   (prints each step; exits non-zero on the first failure)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const work = mkdtempSync(join(tmpdir(), 'sftp-chroot-install-'));
const devDeps = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).devDependencies;
// Runner versions as the repository itself uses them.
const RUNNERS = ['vitest', 'jest', 'mocha', 'ssh2-sftp-client', '@types/ssh2-sftp-client', 'typescript', '@types/node'].map((n) => `${n}@${devDeps[n]}`);
const started = Date.now();

function step(name) {
  process.stdout.write(`\n== ${name} (${Math.round((Date.now() - started) / 1000)} s)\n`);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, ...opts, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...opts.env } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${out.slice(-4000)}`);
  return { ...r, out };
}
function fail(msg) {
  throw new Error(msg);
}
function project(name, pkg = {}) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module', ...pkg }, null, 2));
  return dir;
}
/** The README's examples, copied as a stranger would copy them. */
function copyExamples(dir) {
  for (const e of ['vitest', 'jest', 'node-test', 'mocha']) cpSync(join(repo, 'examples', e), join(dir, 'examples', e), { recursive: true });
  // The repo's vitest config points its cache into the repo's node_modules; a project's own is plain.
  writeFileSync(join(dir, 'examples', 'vitest', 'vitest.config.ts'), "import { defineConfig } from 'vitest/config';\nexport default defineConfig({ test: { include: ['examples/vitest/*.test.ts'] } });\n");
}
function runExamples(dir) {
  const bin = (name) => join(dir, 'node_modules', '.bin', name);
  const checks = [
    ['vitest', [bin('vitest'), 'run', '--config', 'examples/vitest/vitest.config.ts'], /1 passed/],
    ['jest', [bin('jest'), '--config', 'examples/jest/jest.config.cjs'], /Tests:\s+1 passed/],
    ['node:test', [process.execPath, '--test', 'examples/node-test/'], /# pass 1/],
    ['mocha', [bin('mocha'), '--config', 'examples/mocha/.mocharc.cjs'], /1 passing/],
  ];
  for (const [name, [cmd, ...args], passed] of checks) {
    const r = run(cmd, args, { cwd: dir, allowFail: true });
    if (r.status !== 0 || !passed.test(r.out)) fail(`${name} example failed:\n${r.out.slice(-3000)}`);
    process.stdout.write(`   ${name}: passed\n`);
  }
}

try {
  step('npm pack (prepack builds dist/ and the linux-x64/arm64 prebuilds)');
  const packed = run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: repo }).stdout.trim().split('\n').at(-1);
  const tarball = join(work, packed);
  const listing = run('tar', ['-tzf', tarball]).stdout.split('\n').filter(Boolean).map((p) => p.replace(/^package\//, ''));
  for (const f of ['LICENSE', 'README.md', 'SECURITY.md', 'config.example.json', 'config.schema.json', 'contrib/systemd/sftp-chroot.service', 'contrib/fail2ban/filter.d/sftp-chroot.conf', 'contrib/logrotate/sftp-chroot', 'dist/vendor/ssh2.cjs', 'dist/cli.js', 'dist/testing.d.ts', 'prebuilds/linux-x64/jail.napi.glibc.node', 'prebuilds/linux-arm64/jail.napi.glibc.node', `prebuilds/ssh2/linux-x64/sshcrypto.abi${process.versions.modules}.node`, `prebuilds/ssh2/linux-arm64/sshcrypto.abi${process.versions.modules}.node`])
    if (!listing.includes(f)) fail(`the tarball lacks ${f}`);
  const maps = listing.filter((p) => p.endsWith('.map'));
  if (maps.length) fail(`the tarball ships source maps whose sources it does not ship: ${maps.slice(0, 3).join(', ')}`);
  for (const p of listing) if (/^(src|test|bench|patches|node_modules)\//.test(p)) fail(`the tarball ships ${p}`);
  process.stdout.write(`   ${packed}: ${listing.length} files\n`);

  step('npm install -D <tarball> into a fresh project, with no C compiler reachable');
  const npmProj = project('npm-consumer');
  // CC/CXX that always fail: the jail addon must come from the prebuild (ssh2's optional crypto
  // binding may fail to build then; the server warns at start). The output must carry no warning.
  const noCompiler = { CC: '/bin/false', CXX: '/bin/false' };
  const own = run('npm', ['install', '-D', tarball], { cwd: npmProj, env: noCompiler });
  const warnings = own.out.split('\n').filter((l) => /\bwarn\b|ERESOLVE|gyp|deprecated/i.test(l));
  if (warnings.length) fail(`installing the tarball printed warnings:\n${warnings.join('\n')}`);
  const addon = run(process.execPath, ['-e', "console.log(require('node-gyp-build').path(process.argv[1]))", join(npmProj, 'node_modules', 'sftp-chroot')], { cwd: join(npmProj, 'node_modules', 'sftp-chroot') }).stdout.trim();
  if (!addon.includes(`prebuilds${'/'}linux-`)) fail(`the jail addon did not come from a prebuild: ${addon}`);
  process.stdout.write(`   clean (${own.out.trim().split('\n').at(-1)}); addon: ${addon.slice(addon.indexOf('prebuilds'))}\n`);

  step('the README examples under vitest, jest, node:test and mocha (npm)');
  run('npm', ['install', '-D', ...RUNNERS, 'ssh2'], { cwd: npmProj });
  run('npm', ['rebuild', 'ssh2'], { cwd: npmProj }); // the consumer has a compiler for its own ssh2
  copyExamples(npmProj);
  runExamples(npmProj);

  step('TypeScript (module nodenext, strict, skipLibCheck false) accepts the vitest example');
  writeFileSync(join(npmProj, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', lib: ['es2023', 'esnext.disposable'], types: ['node'], strict: true, noEmit: true, skipLibCheck: false, rootDir: '.' }, include: ['examples/vitest/*.ts'] }));
  run(join(npmProj, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: npmProj });
  process.stdout.write('   tsc: no errors\n');

  step('npx sftp-chroot --help');
  const help = run('npx', ['sftp-chroot', '--help'], { cwd: npmProj }).stdout;
  if (!/check-config/.test(help) || !/test-server/.test(help)) fail(`--help does not describe the commands:\n${help}`);

  step('a daemon from a config file: log in, upload, SIGTERM exits 0');
  const cfgDir = join(work, 'daemon');
  mkdirSync(join(cfgDir, 'roots'), { recursive: true });
  const config = join(cfgDir, 'config.json');
  writeFileSync(config, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, keysDir: 'keys', users: [{ username: 'ann', password: 'stranger-pw', root: 'roots/ann', createRoot: true }], log: { xferlog: 'xferlog' } }));
  await daemonRoundTrip(npmProj, config, join(cfgDir, 'roots', 'ann'));

  step('a broken bundled ssh2 in the installed copy: the server refuses to start and names it');
  const bundle = join(npmProj, 'node_modules', 'sftp-chroot', 'dist', 'vendor', 'ssh2.cjs');
  const original = readFileSync(bundle, 'utf8');
  writeFileSync(bundle, original.replace('pauseInput() {', 'pauseInputRemoved() {'));
  const refused = run(join(npmProj, 'node_modules', '.bin', 'sftp-chroot'), ['--config', config], { cwd: npmProj, allowFail: true, timeout: 30_000 });
  writeFileSync(bundle, original);
  if (refused.status === 0 || !/not patched as this server needs: .*pauseInput/.test(refused.out)) fail(`a broken ssh2 was not refused:\n${refused.out.slice(-2000)}`);
  process.stdout.write(`   refused: ${refused.out.trim().split('\n').find((l) => l.includes('not patched'))?.slice(0, 160)}\n`);

  step('npm install -g <tarball> into a temporary prefix, then check-config');
  const prefix = join(work, 'prefix');
  const globalInstall = run('npm', ['install', '-g', '--prefix', prefix, tarball]);
  const gWarn = globalInstall.out.split('\n').filter((l) => /\bwarn\b|ERESOLVE|gyp/i.test(l));
  if (gWarn.length) fail(`npm install -g printed warnings:\n${gWarn.join('\n')}`);
  const checked = run(join(prefix, 'bin', 'sftp-chroot'), ['check-config', config]);
  if (!/OK/.test(checked.out)) fail(`check-config: ${checked.out}`);
  process.stdout.write(`   ${checked.out.trim().split('\n')[0]}\n`);

  // pnpm and yarn, fetched from the npm registry (corepack fetches from their own sites).
  const tools = join(work, 'tools');
  for (const [pm, spec, binName] of [['pnpm', 'pnpm@10', 'pnpm'], ['yarn', '@yarnpkg/cli-dist@4', 'yarn']]) {
    step(`${pm} (${spec} from the npm registry): install the tarball and run the examples`);
    const got = run('npm', ['install', '--prefix', tools, spec], { allowFail: true });
    if (got.status !== 0) {
      process.stdout.write(`   ${spec} could not be fetched here; not run (${got.out.trim().split('\n').at(-1)})\n`);
      continue;
    }
    const pmBin = join(tools, 'node_modules', '.bin', binName);
    const dir = project(`${pm}-consumer`);
    if (pm === 'yarn') writeFileSync(join(dir, '.yarnrc.yml'), 'nodeLinker: node-modules\nenableGlobalCache: false\nenableTelemetry: false\n');
    const installed = run(pmBin, ['add', '-D', `sftp-chroot@file:${tarball}`, ...RUNNERS, 'ssh2'], { cwd: dir, env: { CI: 'true' } });
    const ours = installed.out.split('\n').filter((l) => /sftp-chroot/.test(l) && /warn|error|fail/i.test(l));
    if (ours.length) fail(`${pm} printed warnings about sftp-chroot:\n${ours.join('\n')}`);
    copyExamples(dir);
    runExamples(dir);
  }

  step(`done in ${Math.round((Date.now() - started) / 1000)} s`);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
  else process.stdout.write(`kept ${work}\n`);
}

/** Starts `sftp-chroot --config`, waits for its "listening" line, uploads with ssh2-sftp-client, stops it. */
async function daemonRoundTrip(cwd, config, root) {
  const child = spawn(join(cwd, 'node_modules', '.bin', 'sftp-chroot'), ['--config', config], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + 60_000;
  let port;
  while (!(port = /listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1])) {
    if (Date.now() > deadline || child.exitCode !== null) fail(`the daemon did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const script = `const Sftp = require('ssh2-sftp-client'); (async () => { const c = new Sftp(); await c.connect({ host: '127.0.0.1', port: ${port}, username: 'ann', password: 'stranger-pw' }); await c.put(Buffer.from('hello from a stranger\\n'), '/hello.txt'); await c.end(); })().catch((e) => { console.error(e); process.exit(1); });`;
  run(process.execPath, ['-e', script], { cwd });
  if (readFileSync(join(root, 'hello.txt'), 'utf8') !== 'hello from a stranger\n') fail('the upload did not arrive');
  child.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) fail(`the daemon exited ${code} on SIGTERM:\n${out}`);
  process.stdout.write(`   port ${port}: upload arrived; SIGTERM exit 0; ${existsSync(join(dirname(config), 'keys')) ? readdirSync(join(dirname(config), 'keys')).filter((f) => !f.endsWith('.pub')).length : 0} host keys generated\n`);
}
