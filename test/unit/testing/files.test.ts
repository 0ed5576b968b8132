/**
 * The test double's helpers (src/testing/files.ts) as a test author meets them: errors name the
 * virtual path and the code, never the host root or the jail's system call; after close every
 * helper fails with "test server closed".
 */
import { describe, it, expect } from 'vitest';
import { startTestServer } from '../../../src/testing.js';

async function rejection(p: Promise<unknown>): Promise<Error & { code?: unknown; path?: unknown }> {
  return p.then(
    (v) => {
      throw new Error(`expected a failure, got ${String(v)}`);
    },
    (e: Error) => e,
  );
}

describe('errors name the virtual path', () => {
  it('readFile of a missing file rejects with ENOENT and "/missing.txt", never the host root or openat2', async () => {
    await using s = await startTestServer();
    for (const asked of ['/missing.txt', 'missing.txt', '/../missing.txt']) {
      const err = await rejection(s.readFile(asked));
      expect(err.message).toBe("ENOENT: no such file or directory, readFile '/missing.txt'");
      expect([err.code, err.path]).toEqual(['ENOENT', '/missing.txt']);
      expect(String(err.stack)).not.toContain(s.root);
      expect(String(err.stack)).not.toContain('openat2');
    }
  });

  it('each helper names itself, the virtual path and the code', async () => {
    await using s = await startTestServer({ files: { 'a.txt': 'x', 'dir/': null } });
    const cases: [() => Promise<unknown>, string][] = [
      [() => s.readFile('/dir'), "EISDIR: illegal operation on a directory, readFile '/dir'"],
      [() => s.readFile('/a.txt/b'), "ENOTDIR: not a directory, readFile '/a.txt/b'"],
      [() => s.writeFile('/a.txt/b', 'y'), "ENOTDIR: not a directory, writeFile '/a.txt/b'"],
      [() => s.writeFile('/dir', 'y'), "EISDIR: illegal operation on a directory, writeFile '/dir'"],
    ];
    for (const [call, message] of cases) {
      const err = await rejection(call());
      expect(err.message).toBe(message);
      expect(err.message).not.toContain(s.root);
    }
  });
});

describe('after close', () => {
  it('every helper throws or rejects "test server closed", failNext included', async () => {
    const s = await startTestServer({ files: { 'a.txt': 'x' } });
    await s.close();
    const async: [string, () => Promise<unknown>][] = [
      ['readFile', () => s.readFile('/a.txt')],
      ['writeFile', () => s.writeFile('/b.txt', 'y')],
      ['exists', () => s.exists('/a.txt')],
      ['tree', () => s.tree()],
    ];
    for (const [name, call] of async) {
      const err = await rejection(call());
      expect(err.message).toBe(`test server closed: ${name} was called after close()`);
      expect(err.code).toBe('ERR_TEST_SERVER_CLOSED');
    }
    expect(() => s.failNext('open', 'FAILURE')).toThrow('test server closed: failNext was called after close()');
    await expect(s.events.waitFor('transfer')).rejects.toThrow(/^test server closed; saw: /);
  });

  it('a helper called while close() is under way is refused too, not met by EBADF', async () => {
    const s = await startTestServer({ files: { 'a.txt': 'x' } });
    const closing = s.close();
    const err = await rejection(s.readFile('/a.txt'));
    expect(err.message).toMatch(/^test server closed/);
    await closing;
  });

  it('an unknown user is still a TypeError naming the users there are', async () => {
    await using s = await startTestServer({ users: [{ username: 'alice' }, { username: 'bob' }] });
    await expect(s.readFile('/a', 'carol')).rejects.toThrow(new TypeError('no user "carol" on this test server (have: alice, bob)'));
  });
});
