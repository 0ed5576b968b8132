/**
 * contrib/ works as shipped: the systemd unit (and its /home drop-in) as systemd-analyze reads it,
 * the fail2ban jail + filter as fail2ban-client reads them, and the logrotate snippet run by the real
 * logrotate against a running daemon. Each check copies the file into a temporary directory and
 * changes only host paths (and logrotate's `su` user), never the logic.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCli, startDaemon, type Daemon } from '../helpers/cli.js';
import { run } from '../helpers/openssh.js';

const CONTRIB = new URL('../../contrib/', import.meta.url).pathname;
const contrib = (path: string) => readFile(join(CONTRIB, path), 'utf8');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sftp-chroot-contrib-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tempDir(name: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

describe('contrib/systemd', () => {
  async function unitDir(name: string, dropIn: boolean): Promise<string> {
    const d = await tempDir(name);
    await cp(join(CONTRIB, 'systemd/sftp-chroot.service'), join(d, 'sftp-chroot.service'));
    if (dropIn) {
      await mkdir(join(d, 'sftp-chroot.service.d'));
      await cp(join(CONTRIB, 'systemd/home-roots.conf'), join(d, 'sftp-chroot.service.d/home-roots.conf'));
    }
    return join(d, 'sftp-chroot.service');
  }

  it('the unit passes systemd-analyze verify without a single warning', async () => {
    const r = await run('systemd-analyze', ['verify', await unitDir('verify', false)]);
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: '' });
  });

  it('the unit with the home-roots.conf drop-in passes systemd-analyze verify, and the drop-in takes effect', async () => {
    const unit = await unitDir('verify-home', true);
    const r = await run('systemd-analyze', ['verify', unit]);
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: '' });
    // The analyser reads the drop-in: /home is no longer hidden from the service.
    const s = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit]);
    expect(s.stdout).toMatch(/✗ ProtectHome=.*full access to home directories/);
  });

  it('the sandbox stays tight: systemd-analyze security rates the unit at most 3.0 (3.2 with the /home drop-in)', async () => {
    // 2.9 and 3.1 when written; a dropped protection raises the score past the threshold.
    const alone = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', '--threshold=30', await unitDir('security', false)]);
    expect(alone.code, alone.stdout.split('\n').at(-2)).toBe(0);
    const home = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', '--threshold=32', await unitDir('security-home', true)]);
    expect(home.code, home.stdout.split('\n').at(-2)).toBe(0);
  });

  it('the first start can write host keys: the unit owns a StateDirectory and every config in the README keeps keysDir there', async () => {
    const unit = await contrib('systemd/sftp-chroot.service');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^StateDirectory=sftp-chroot$/m);
    expect(unit).not.toMatch(/^ReadOnlyPaths=/m);
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const operators = readme.slice(readme.indexOf('## For operators'), readme.indexOf('## The audit log'));
    // Whole configs (they name users); fragments showing one setting (hooks, …) keep the default keys.
    const blocks = [...operators.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as { keysDir?: string; hostKeys?: string[]; users?: unknown });
    const configs = blocks.filter((c) => c.users !== undefined);
    expect(configs.length).toBeGreaterThan(0);
    for (const f of blocks.filter((c) => c.users === undefined)) expect(f.keysDir ?? f.hostKeys, 'a fragment does not move the host keys').toBeUndefined();
    for (const c of configs) {
      expect(c.hostKeys ?? []).toEqual([]);
      expect(c.keysDir).toBe('/var/lib/sftp-chroot/keys');
    }
  });
});

describe('contrib/fail2ban', () => {
  /** A fail2ban config dir: the distribution's (no jails of its own) plus the shipped filter and jail. */
  async function fail2banDir(name: string, edit: (jail: string) => string = (j) => j): Promise<string> {
    const d = await tempDir(name);
    await cp('/etc/fail2ban', d, { recursive: true });
    for (const f of await readdir(join(d, 'jail.d'))) await rm(join(d, 'jail.d', f));
    const log = join(d, 'auth.log');
    await writeFile(log, '');
    await cp(join(CONTRIB, 'fail2ban/filter.d/sftp-chroot.conf'), join(d, 'filter.d/sftp-chroot.conf'));
    const jail = (await contrib('fail2ban/jail.d/sftp-chroot.local')).replace('/var/log/sftp-chroot/auth.log', log);
    await writeFile(join(d, 'jail.d/sftp-chroot.local'), edit(jail));
    return d;
  }
  /** fail2ban-client -d: the commands the server would get, one Python list per line. */
  const dump = async (d: string) => {
    const r = await run('fail2ban-client', ['-c', d, '-d']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split('\n').filter((l) => l.startsWith("['"));
  };
  const actionPort = (lines: string[]) => /\['port', '([^']*)'\]/.exec(lines.find((l) => l.startsWith("['multi-set', 'sftp-chroot', 'action'")) ?? '')?.[1];

  it('fail2ban-client -d accepts the jail with the filter, and the jail bans on every port', async () => {
    const lines = await dump(await fail2banDir('f2b'));
    expect(lines).toContain("['add', 'sftp-chroot', 'auto']");
    expect(lines.some((l) => l.startsWith("['set', 'sftp-chroot', 'addfailregex'"))).toBe(true);
    expect(lines.find((l) => l.startsWith("['set', 'sftp-chroot', 'addaction'"))).toMatch(/allports/);
    expect(actionPort(lines)).toBe('0:65535');
  });

  it('the one-line override the jail documents bans only the given port', async () => {
    const jail = await contrib('fail2ban/jail.d/sftp-chroot.local');
    const override = /replace the banaction line with:\s+(port = \d+)/.exec(jail)?.[1];
    expect(override).toBe('port = 22');
    const lines = await dump(await fail2banDir('f2b-port', (j) => j.replace(/^banaction\s*=.*$/m, override!)));
    expect(lines.find((l) => l.startsWith("['set', 'sftp-chroot', 'addaction'"))).not.toMatch(/allports/);
    expect(actionPort(lines)).toBe('22');
  });
});

describe('contrib/logrotate', () => {
  const user = userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();

  /** The snippet with this test's log directory, pid file and user (logrotate refuses unknown users). */
  async function snippet(d: string, pidFile: string): Promise<string> {
    const text = (await contrib('logrotate/sftp-chroot'))
      .replaceAll('/var/log/sftp-chroot', join(d, 'logs'))
      .replaceAll('/run/sftp-chroot/sftp-chroot.pid', pidFile)
      .replace(/^(\s*)su sftp-chroot sftp-chroot$/m, `$1su ${user} ${group}`);
    const conf = join(d, 'logrotate.conf');
    await writeFile(conf, text, { mode: 0o644 });
    return conf;
  }

  /** A `systemctl` first on PATH that answers is-active with `active` and records its arguments. */
  async function fakeSystemctl(d: string, active: boolean): Promise<{ env: NodeJS.ProcessEnv; calls: () => Promise<string> }> {
    const bin = join(d, 'bin');
    await mkdir(bin, { recursive: true });
    const calls = join(d, 'systemctl-calls');
    await writeFile(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> '${calls}'\n[ "$1" = -q ] && [ "$2" = is-active ] && exit ${active ? 0 : 3}\nexit 0\n`);
    await chmod(join(bin, 'systemctl'), 0o755);
    return { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, calls: () => readFile(calls, 'utf8').catch(() => '') };
  }

  const logrotate = (conf: string, d: string, env: NodeJS.ProcessEnv, ...flags: string[]) => run('logrotate', [...flags, '-s', join(d, 'state'), conf], { env });

  let daemon: Daemon | undefined;
  afterEach(async () => {
    if (daemon) await daemon.stop('SIGKILL');
    daemon = undefined;
  });

  it('logrotate -d accepts the snippet', async () => {
    const d = await tempDir('lr-debug');
    await mkdir(join(d, 'logs'));
    await writeFile(join(d, 'logs/audit.json'), '{}\n');
    const r = await logrotate(await snippet(d, join(d, 'x.pid')), d, process.env, '-d');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.stderr).toMatch(/audit\.json/);
  });

  it('outside systemd, postrotate signals the daemon through its pid file: records written after the rotation go to the new file, not to .1', async () => {
    const d = await tempDir('lr-pidfile');
    const logs = join(d, 'logs');
    await mkdir(logs);
    await mkdir(join(d, 'root'));
    await runCli(['keygen', '--out', join(d, 'keys')], d);
    await writeFile(
      join(d, 'config.json'),
      JSON.stringify({ hostKeys: ['keys/ssh_host_ed25519_key'], listen: { host: '127.0.0.1', port: 0 }, passwordCost: 10, users: [{ username: 'u', password: 'pw', root: 'root' }], log: { file: 'logs/audit.json', authLog: 'logs/auth.log' } }),
    );
    const pidFile = join(d, 'sftp-chroot.pid');
    daemon = await startDaemon(['--config', 'config.json', '--pid-file', pidFile], d);
    const audit = join(logs, 'audit.json');
    await until(async () => (await readFile(audit, 'utf8').catch(() => '')).includes('"server.start"'));

    const { env, calls } = await fakeSystemctl(d, false);
    const r = await logrotate(await snippet(d, pidFile), d, env, '-f');
    expect(r.code, r.stderr).toBe(0);
    expect(await calls()).toBe('-q is-active sftp-chroot.service\n');
    expect(await readFile(`${audit}.1`, 'utf8')).toMatch(/"server\.start"/);
    // The daemon recreates audit.json when SIGUSR1 reopens it (the snippet has no "create").
    await until(async () => existsSync(audit));
    daemon.child.kill('SIGHUP');
    await until(async () => (await readFile(audit, 'utf8')).includes('"server.reload"'));
    expect(await readFile(`${audit}.1`, 'utf8')).not.toMatch(/"server\.reload"/);
  });

  it('when the unit is active, postrotate signals the main process through systemctl kill', async () => {
    const d = await tempDir('lr-systemd');
    await mkdir(join(d, 'logs'));
    await writeFile(join(d, 'logs/auth.log'), 'x\n');
    const { env, calls } = await fakeSystemctl(d, true);
    const r = await logrotate(await snippet(d, join(d, 'missing.pid')), d, env, '-f');
    expect(r.code, r.stderr).toBe(0);
    expect(await calls()).toBe('-q is-active sftp-chroot.service\nkill --kill-who=main --signal=SIGUSR1 sftp-chroot.service\n');
  });

  it('postrotate fails visibly (logrotate exits non-zero, saying why) when neither the unit nor the pid file is there', async () => {
    const d = await tempDir('lr-none');
    await mkdir(join(d, 'logs'));
    await writeFile(join(d, 'logs/auth.log'), 'x\n');
    const { env } = await fakeSystemctl(d, false);
    const r = await logrotate(await snippet(d, join(d, 'missing.pid')), d, env, '-f');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not reopening its logs/);
  });
});

async function until(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; !(await cond()); i++) {
    if (i > 600) throw new Error('condition not met within 15 s');
    await new Promise((r) => setTimeout(r, 25));
  }
}
