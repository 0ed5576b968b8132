import { afterAll, describe, it, expect } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, expandRoot, loadConfigFile } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { ssh2 } from '../../../src/ssh/ssh2.js';

const base = mkdtempSync(join(tmpdir(), 'cfg-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
mkdirSync(join(base, 'r1'));
mkdirSync(join(base, 'r2'));
const pair = ssh2.utils.generateKeyPairSync('ed25519');
const publicKey = `${pair.public} alice@laptop`;

function issues(raw: unknown, opts: { checkFiles?: boolean } = {}): { path: string; message: string }[] {
  try {
    validateConfig(raw, { baseDir: base, ...opts });
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  return [];
}

describe('validateConfig', () => {
  it('accepts a minimal config and fills defaults', () => {
    const c = validateConfig({ users: [{ username: 'u', password: 'p', root: 'r1' }] }, { baseDir: base });
    expect(c.listen).toMatchObject({ host: '127.0.0.1', port: 2222, proxyProtocol: 'off' });
    expect(c.users[0]!.root).toBe(join(base, 'r1'));
    expect(c.users[0]!.umask).toBe(0o022);
    expect(c.limits.maxAuthTries).toBe(6);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.users[0])).toBe(true);
  });

  it('reports every wrong field at once, each with its path', () => {
    const list = issues({ listen: { port: 70000 }, users: [{ username: '-x', root: 5 }], extra: 1 });
    const paths = list.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['listen.port', 'users[0].username', 'users[0].root', '']));
    expect(list.find((i) => i.path === '')!.message).toMatch(/extra/);
  });

  it('names a missing root and a root that is a file', () => {
    const list = issues({ users: [{ username: 'a', password: 'p', root: 'missing' }, { username: 'b', password: 'p', root: '/etc/hostname' }] });
    expect(list).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'users[0].root', message: expect.stringMatching(/does not exist/) }),
        expect.objectContaining({ path: 'users[1].root', message: expect.stringMatching(/not a directory/) }),
      ]),
    );
  });

  it('accepts a missing root that createRoot will make', () => {
    expect(issues({ users: [{ username: 'a', password: 'p', root: 'later', createRoot: true }] })).toEqual([]);
  });

  it('refuses roots that share a name prefix only when one is really inside the other', () => {
    mkdirSync(join(base, 'alice'));
    mkdirSync(join(base, 'alice2'));
    expect(issues({ users: [{ username: 'a', password: 'p', root: 'alice' }, { username: 'b', password: 'p', root: 'alice2' }] })).toEqual([]);
    mkdirSync(join(base, 'alice', 'inner'));
    expect(issues({ users: [{ username: 'a', password: 'p', root: 'alice' }, { username: 'b', password: 'p', root: 'alice/inner' }] })).toEqual([
      { path: 'users', message: `root of "b" (${join(base, 'alice', 'inner')}) is inside the root of "a" (${join(base, 'alice')}); roots must not nest` },
    ]);
  });

  it('rejects a malformed authorized key and a malformed hash with their paths', () => {
    const list = issues({ users: [{ username: 'a', passwordHash: '$scrypt$nope', authorizedKeys: ['ssh-ed25519 !!!'], root: 'r1' }] });
    expect(list.map((i) => i.path)).toEqual(expect.arrayContaining(['users[0].passwordHash', 'users[0].authorizedKeys[0]']));
  });

  it('rejects a well-formed hash whose scrypt parameters are out of range', () => {
    const hash = `$scrypt$ln=30,r=8,p=1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
    expect(issues({ users: [{ username: 'a', passwordHash: hash, root: 'r1' }] })).toEqual([{ path: 'users[0].passwordHash', message: 'scrypt parameters out of range (ln 1-22, r 1-32, p 1-16)' }]);
  });

  it('parses inline authorized keys into keys with their fingerprint and comment', () => {
    const c = validateConfig({ users: [{ username: 'a', authorizedKeys: [`restrict ${publicKey}`], root: 'r1' }] }, { baseDir: base });
    expect(c.users[0]!.authorizedKeys).toEqual([expect.objectContaining({ type: 'ssh-ed25519', comment: 'alice@laptop', fingerprint: expect.stringMatching(/^SHA256:/) })]);
  });

  it('reads authorizedKeysFile (%u expanded), skipping comments, and names a bad line by number', () => {
    writeFileSync(join(base, 'keys-a'), `# laptop\n\n${publicKey}\n`);
    writeFileSync(join(base, 'keys-b'), `${publicKey}\nssh-ed25519 AAAA\n`);
    const c = validateConfig({ users: [{ username: 'a', authorizedKeysFile: 'keys-%u', root: 'r1' }] }, { baseDir: base });
    expect(c.users[0]!.authorizedKeys.map((k) => k.comment)).toEqual(['alice@laptop']);
    const list = issues({ users: [{ username: 'b', authorizedKeysFile: 'keys-%u', root: 'r1' }] });
    expect(list).toEqual([{ path: 'users[0].authorizedKeysFile', message: expect.stringMatching(/keys-b line 2: unreadable public key/) }]);
  });

  it('needs a way to log in and names a user defined twice', () => {
    expect(issues({ users: [{ username: 'a', root: 'r1' }, { username: 'a', password: 'p', root: 'r2' }] })).toEqual([
      { path: 'users[0]', message: expect.stringMatching(/expected a way to log in/) },
      { path: 'users[1].username', message: '"a" is already defined at users[0]' },
    ]);
  });

  it('expands %u and %% in root templates as sshd does', () => {
    expect(expandRoot('/srv/%u/100%%', 'bob')).toBe('/srv/bob/100%');
  });

  it('lets users inherit settings from their group and override them', () => {
    const c = validateConfig(
      { groups: { g: { root: join(base, '%u'), readOnly: true, umask: '0077' } }, users: [{ username: 'r1', password: 'p', group: 'g' }, { username: 'r2', password: 'p', group: 'g', readOnly: false }] },
      { baseDir: base },
    );
    expect(c.users[0]).toMatchObject({ root: join(base, 'r1'), readOnly: true, umask: 0o077 });
    expect(c.users[1]).toMatchObject({ root: join(base, 'r2'), readOnly: false });
  });

  it('names an unknown group and the groups there are', () => {
    expect(issues({ groups: { staff: {} }, users: [{ username: 'a', password: 'p', root: 'r1', group: 'nope' }] })).toEqual([{ path: 'users[0].group', message: 'no group "nope" in "groups" (have: staff)' }]);
  });

  it('adds users from usersFile, with paths into that file for their problems', () => {
    writeFileSync(join(base, 'users.json'), JSON.stringify([{ username: 'f', password: 'p', root: 'r2' }, { username: 'g', root: 7 }]));
    expect(issues({ usersFile: 'users.json' })).toEqual([expect.objectContaining({ path: 'usersFile[1].root' })]);
    writeFileSync(join(base, 'users.json'), JSON.stringify([{ username: 'f', password: 'p', root: 'r2' }]));
    expect(validateConfig({ usersFile: 'users.json' }, { baseDir: base }).users.map((u) => u.username)).toEqual(['f']);
  });

  it('warns about a plain-text password and resolves log paths against the base directory', () => {
    const c = validateConfig({ log: { file: 'audit.json', authLog: '/var/log/auth' }, users: [{ username: 'a', password: 'p', root: 'r1' }] }, { baseDir: base });
    expect(c.warnings).toEqual([expect.stringMatching(/^user "a" has a plain-text password/)]);
    expect(c.log).toMatchObject({ file: join(base, 'audit.json'), authLog: '/var/log/auth' });
  });

  it('checks host key files only when asked to check files', () => {
    const cfg = { hostKeys: ['no-such-key'], users: [{ username: 'a', password: 'p', root: 'r1' }] };
    expect(issues(cfg)).toEqual([{ path: 'hostKeys[0]', message: `cannot read ${join(base, 'no-such-key')}: ENOENT` }]);
    expect(issues(cfg, { checkFiles: false })).toEqual([]);
  });

  it('resolves spoolDir against the base directory and refuses, with hooks, a spool inside a root or holding one', () => {
    const users = [{ username: 'a', password: 'p', root: 'r1' }];
    const hooks = [{ name: 'h', events: ['upload'], command: { argv: ['/bin/true'] } }];
    expect(validateConfig({ users, hooks }, { baseDir: base }).spoolDir).toBe(join(base, 'spool'));
    expect(issues({ users, hooks, spoolDir: 'r1/spool' })).toEqual([{ path: 'spoolDir', message: expect.stringMatching(/inside the root of "a"/) }]);
    expect(issues({ users, hooks, spoolDir: '.' })).toEqual([{ path: 'spoolDir', message: expect.stringMatching(/the root of "a" .* is inside/) }]);
    expect(issues({ users, spoolDir: 'r1/spool' })).toEqual([]); // no hooks: no spool
    expect(issues({ users, hooks: [{ ...hooks[0], name: 'h' }, { ...hooks[0], retryMaxSeconds: 0 }] }).map((i) => i.path)).toEqual(['hooks[1].retryMaxSeconds', 'hooks[1].name']);
  });
});

describe('loadConfigFile', () => {
  it('says when the file is not JSON, and resolves paths against its directory', () => {
    const file = join(base, 'bad.json');
    writeFileSync(file, '{');
    expect(() => loadConfigFile(file)).toThrow(/bad\.json is not valid JSON/);
    writeFileSync(file, JSON.stringify({ users: [{ username: 'a', password: 'p', root: 'r1' }] }));
    expect(loadConfigFile(file).users[0]!.root).toBe(join(base, 'r1'));
  });
});
