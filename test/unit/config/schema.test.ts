import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { configSchema } from '../../../src/config/schema.js';
import { configJsonSchema } from '../../../src/config/json-schema.js';
import { formatPath, validateConfig } from '../../../src/config/load.js';

/** The schema's issues for `raw`, as "path: message". */
function schemaIssues(raw: unknown): string[] {
  const r = configSchema.safeParse(raw);
  return r.success ? [] : r.error.issues.map((i) => `${formatPath(i.path as PropertyKey[])}: ${i.message}`);
}
const user = { username: 'u', password: 'p', root: '/srv/u' };

describe('config schema', () => {
  it('config.schema.json is the schema generated from the zod definition', () => {
    const committed = JSON.parse(readFileSync(new URL('../../../config.schema.json', import.meta.url), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('config.example.json passes the schema (files not checked)', () => {
    const example = JSON.parse(readFileSync(new URL('../../../config.example.json', import.meta.url), 'utf8')) as unknown;
    expect(() => validateConfig(example, { baseDir: '/nonexistent', checkFiles: false })).not.toThrow();
  });

  it('rejects an allowFrom or proxyTrusted entry that is no address or range, naming it', () => {
    expect(schemaIssues({ users: [{ ...user, allowFrom: ['10.0.0.0/33'] }], listen: { proxyTrusted: ['lb.example'] } })).toEqual([
      'listen.proxyTrusted: "lb.example" is not an IP address or CIDR range (expected e.g. "192.0.2.0/24" or "2001:db8::/32")',
      'users[0].allowFrom: "10.0.0.0/33" is not an IP address or CIDR range (expected e.g. "192.0.2.0/24" or "2001:db8::/32")',
    ]);
  });

  it('rejects a passwordHash that is not in the hash-password format', () => {
    expect(schemaIssues({ users: [{ ...user, password: undefined, passwordHash: '$2b$10$bcrypt' }] })).toEqual([
      'users[0].passwordHash: expected a hash made by `sftp-chroot hash-password` ("$scrypt$ln=…,r=…,p=…$salt$hash")',
    ]);
  });

  it('turns each authorized_keys line into a key once, and rejects a security key', () => {
    expect(schemaIssues({ users: [{ ...user, authorizedKeys: ['sk-ssh-ed25519@openssh.com AAAA'] }] })).toEqual(['users[0].authorizedKeys[0]: security-key (sk-*) keys are not supported']);
  });
});

describe('config schema: algorithms', () => {
  it('rejects hmac-sha1 with an error at algorithms.mac that names it', () => {
    const list = schemaIssues({ algorithms: { mac: ['hmac-sha1'] }, users: [user] });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatch(/^algorithms\.mac: unsupported MAC "hmac-sha1"; expected some of: /);
  });

  it('rejects diffie-hellman-group-exchange-sha256 (ssh2 cannot serve it) at algorithms.kex, naming only it', () => {
    const list = schemaIssues({ algorithms: { kex: ['curve25519-sha256', 'diffie-hellman-group-exchange-sha256'] }, users: [user] });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatch(/^algorithms\.kex: unsupported key exchange "diffie-hellman-group-exchange-sha256"; /);
  });

  it('defaults to the compatible profile and takes "strict" or a profile with one list replaced', () => {
    const parse = (algorithms?: unknown) => configSchema.parse({ users: [user], ...(algorithms !== undefined ? { algorithms } : {}) }).algorithms;
    expect(parse()).toEqual({ profile: 'compatible' });
    expect(parse('strict')).toEqual({ profile: 'strict' });
    expect(parse({ profile: 'strict', mac: ['hmac-sha2-256-etm@openssh.com'] })).toMatchObject({ profile: 'strict', mac: ['hmac-sha2-256-etm@openssh.com'] });
  });
});
