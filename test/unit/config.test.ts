import { describe, it, expect } from 'vitest';
import { readFileSync, mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, expandRoot } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { ConfigError } from '../../src/errors.js';

const base = mkdtempSync(join(tmpdir(), 'cfg-'));
mkdirSync(join(base, 'r1'));
mkdirSync(join(base, 'r2'));

function issues(raw: unknown): { path: string; message: string }[] {
  try {
    validateConfig(raw, { baseDir: base });
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  return [];
}

describe('config validation', () => {
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

  it('refuses roots that share a name prefix only when one is really inside the other', () => {
    mkdirSync(join(base, 'alice'));
    mkdirSync(join(base, 'alice2'));
    expect(issues({ users: [{ username: 'a', password: 'p', root: 'alice' }, { username: 'b', password: 'p', root: 'alice2' }] })).toEqual([]);
  });

  it('rejects a malformed authorized key and a malformed hash with their paths', () => {
    const list = issues({ users: [{ username: 'a', passwordHash: '$scrypt$nope', authorizedKeys: ['ssh-ed25519 !!!'], root: 'r1' }] });
    expect(list.map((i) => i.path)).toEqual(expect.arrayContaining(['users[0].passwordHash', 'users[0].authorizedKeys[0]']));
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

  it('config.schema.json is the schema generated from the zod definition', () => {
    const committed = JSON.parse(readFileSync(new URL('../../config.schema.json', import.meta.url), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('config.example.json passes the schema (files not checked)', () => {
    const example = JSON.parse(readFileSync(new URL('../../config.example.json', import.meta.url), 'utf8')) as unknown;
    expect(() => validateConfig(example, { baseDir: base, checkFiles: false })).not.toThrow();
  });
});
