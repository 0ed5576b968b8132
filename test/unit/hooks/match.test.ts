import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/audit/events.js';
import { globToRegExp, hookEventOf, hookFilter, pathsOf } from '../../../src/hooks/match.js';
import { core, hook, rec, upload } from './helpers.js';

const download = (path: string, status: 'complete' | 'incomplete' | 'error' = 'complete') =>
  upload(path, { direction: 'download', flags: 'READ', bytesRead: 3, bytesWritten: 0, status });
const rename = (from: string, to: string, ok = true) => rec({ event: 'rename', ...core, from, to, overwrite: false, ok });
const remove = (path: string, ok = true) => rec({ event: 'remove', ...core, path, ok });
const login = (user = 'alice') => rec({ event: 'auth.success', ...core, user, method: 'password' });
const totals = { filesUp: 0, filesDown: 0, bytesIn: 0, bytesOut: 0, requests: 0, errors: 0 };

describe('hookEventOf', () => {
  it('maps a complete upload (or read-write transfer) to "upload"', () => {
    expect(hookEventOf(upload('/in/a.csv'))).toBe('upload');
    expect(hookEventOf(upload('/in/a.csv', { direction: 'both' }))).toBe('upload');
  });

  it('maps an incomplete or failed upload to "upload-failed"', () => {
    expect(hookEventOf(upload('/in/a.csv', { status: 'incomplete' }))).toBe('upload-failed');
    expect(hookEventOf(upload('/in/a.csv', { status: 'error', sftpStatus: 'FAILURE' }))).toBe('upload-failed');
  });

  it('maps a complete download to "download" and an unfinished download or a no-data open to nothing', () => {
    expect(hookEventOf(download('/out/r.pdf'))).toBe('download');
    expect(hookEventOf(download('/out/r.pdf', 'incomplete'))).toBeUndefined();
    expect(hookEventOf(download('/out/r.pdf', 'error'))).toBeUndefined();
    expect(hookEventOf(upload('/x', { direction: 'none', bytesWritten: 0 }))).toBeUndefined();
  });

  it('maps each successful mutation to its own event and a failed one (ok false) to nothing', () => {
    const o = { ...core };
    const ok: AuditRecord[] = [
      remove('/a'),
      rename('/a', '/b'),
      rec({ event: 'mkdir', ...o, path: '/d', ok: true }),
      rec({ event: 'rmdir', ...o, path: '/d', ok: true }),
      rec({ event: 'symlink', ...o, path: '/l', target: '/a', ok: true }),
      rec({ event: 'link', ...o, from: '/a', to: '/b', ok: true }),
      rec({ event: 'setstat', ...o, path: '/a', changes: { mode: '0644' }, ok: true }),
      rec({ event: 'copy', ...o, from: '/a', to: '/b', bytes: 3, ok: true }),
    ];
    for (const r of ok) {
      expect(hookEventOf(r)).toBe(r.event);
      expect(hookEventOf({ ...r, ok: false, sftpStatus: 'PERMISSION_DENIED' } as AuditRecord)).toBeUndefined();
    }
  });

  it('maps auth.success to "login", a real auth.failure to "login-failed", a declined key probe to nothing, session.close to "logout"', () => {
    expect(hookEventOf(login())).toBe('login');
    const failure = rec({ event: 'auth.failure', ...core, user: 'mallory', method: 'password', reason: 'bad-password', attempt: 1 });
    expect(hookEventOf(failure)).toBe('login-failed');
    expect(hookEventOf({ ...failure, method: 'publickey', reason: 'bad-key', probe: true } as AuditRecord)).toBeUndefined();
    expect(hookEventOf(rec({ event: 'session.close', ...core, durationMs: 5, totals }))).toBe('logout');
  });

  it('maps records that are no hook event (session.open, refusals, server events) to nothing', () => {
    expect(hookEventOf(rec({ event: 'session.open', ...core, client: 'SSH-2.0-x' }))).toBeUndefined();
    expect(hookEventOf({ ...rec({ event: 'session.open', ...core, client: 'x' }), event: 'request.refused', what: 'exec', why: 'only sftp is allowed' } as unknown as AuditRecord)).toBeUndefined();
    expect(hookEventOf(rec({ event: 'server.start', message: 'up' }))).toBeUndefined();
  });
});

describe('globToRegExp', () => {
  it('matches "*.csv" against the last name only: /in/a.csv yes, /in/a.csv.tmp no', () => {
    const re = globToRegExp('*.csv');
    expect(re.test('/in/a.csv')).toBe(true);
    expect(re.test('/a.csv')).toBe(true);
    expect(re.test('/in/a.csv.tmp')).toBe(false);
    expect(re.test('/in/a_csv')).toBe(false);
  });

  it('matches a pattern without "/" against the whole last name: "a.csv" matches /in/a.csv, not /in/ba.csv', () => {
    const re = globToRegExp('a.csv');
    expect(re.test('/in/a.csv')).toBe(true);
    expect(re.test('a.csv')).toBe(true);
    expect(re.test('/in/ba.csv')).toBe(false);
  });

  it('matches "/in/**" across folders under /in but not /inbox', () => {
    const re = globToRegExp('/in/**');
    expect(re.test('/in/x')).toBe(true);
    expect(re.test('/in/x/y')).toBe(true);
    expect(re.test('/inbox/x')).toBe(false);
    expect(re.test('/out/in/x')).toBe(false);
  });

  it('keeps "*" within one name when the pattern has a "/"', () => {
    const re = globToRegExp('/in/*.csv');
    expect(re.test('/in/a.csv')).toBe(true);
    expect(re.test('/in/sub/a.csv')).toBe(false);
  });

  it('matches "?" to exactly one character, never a "/"', () => {
    const re = globToRegExp('/in/file?.txt');
    expect(re.test('/in/file1.txt')).toBe(true);
    expect(re.test('/in/file.txt')).toBe(false);
    expect(re.test('/in/file12.txt')).toBe(false);
    expect(globToRegExp('/a?b').test('/a/b')).toBe(false);
  });

  it('treats regular-expression metacharacters in the glob literally', () => {
    expect(globToRegExp('/in/a.b').test('/in/axb')).toBe(false);
    expect(globToRegExp('/in/a.b').test('/in/a.b')).toBe(true);
    const odd = '/in/(x)+[y]{2}^$|\\.csv';
    expect(globToRegExp(odd).test(odd)).toBe(true);
    expect(globToRegExp('/in/(x)+').test('/in/xx')).toBe(false);
    expect(globToRegExp('/in/a|b').test('/in/a')).toBe(false);
    expect(globToRegExp('/in/[ab]').test('/in/a')).toBe(false);
  });
});

describe('hookFilter', () => {
  const groups: Record<string, string> = { alice: 'finance', bob: 'ops' };
  const groupOf = (u: string) => groups[u];
  const wants = (over: Record<string, unknown>, r: AuditRecord) => {
    const ev = hookEventOf(r);
    if (ev === undefined) throw new Error('not a hook event');
    return hookFilter(hook(over), groupOf).wants(r, ev);
  };

  it('lets through only the events the hook lists', () => {
    expect(wants({ events: ['upload'] }, upload('/a'))).toBe(true);
    expect(wants({ events: ['download', 'remove'] }, upload('/a'))).toBe(false);
    expect(wants({ events: ['download', 'remove'] }, remove('/a'))).toBe(true);
  });

  it('with users, lets through only those users', () => {
    expect(wants({ users: ['alice'] }, upload('/a'))).toBe(true);
    expect(wants({ users: ['bob'] }, upload('/a'))).toBe(false);
    expect(wants({ users: ['bob'] }, upload('/a', { user: 'bob' }))).toBe(true);
  });

  it('with groups, lets through only users whose group (from groupOf) is listed; an unknown user is not', () => {
    expect(wants({ groups: ['finance'] }, upload('/a'))).toBe(true);
    expect(wants({ groups: ['ops'] }, upload('/a'))).toBe(false);
    expect(wants({ groups: ['ops'] }, upload('/a', { user: 'bob' }))).toBe(true);
    expect(wants({ groups: ['finance', 'ops'] }, upload('/a', { user: 'carol' }))).toBe(false);
  });

  it('with paths, lets through a record whose path matches any of the globs', () => {
    const h = { paths: ['/in/**', '*.csv'] };
    expect(wants(h, upload('/in/x/y.bin'))).toBe(true);
    expect(wants(h, upload('/out/r.csv'))).toBe(true);
    expect(wants(h, upload('/out/r.bin'))).toBe(false);
    expect(wants(h, upload('/inbox/r.bin'))).toBe(false);
  });

  it('requires every listed condition at once (event and user and group and path)', () => {
    const h = { events: ['upload'], users: ['alice', 'bob'], groups: ['finance'], paths: ['/in/**'] };
    expect(wants(h, upload('/in/a'))).toBe(true);
    expect(wants(h, upload('/in/a', { user: 'bob' }))).toBe(false); // group ops
    expect(wants(h, upload('/out/a'))).toBe(false); // path
    expect(wants(h, download('/in/a'))).toBe(false); // event
    expect(wants({ ...h, users: ['bob'] }, upload('/in/a'))).toBe(false); // user
  });

  it('matches a rename (or link/copy) by either its source or its destination path', () => {
    const h = { events: ['rename', 'copy'], paths: ['/in/**'] };
    expect(pathsOf(rename('/in/a', '/done/a'))).toEqual(['/in/a', '/done/a']);
    expect(wants(h, rename('/in/a', '/done/a'))).toBe(true);
    expect(wants(h, rename('/tmp/a', '/in/a'))).toBe(true);
    expect(wants(h, rename('/tmp/a', '/done/a'))).toBe(false);
    expect(wants(h, rec({ event: 'copy', ...core, from: '/x', to: '/in/x', bytes: 1, ok: true }))).toBe(true);
  });
});
