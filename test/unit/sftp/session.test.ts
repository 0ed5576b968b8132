import { describe, it, expect } from 'vitest';
import { fakeFile, fakeFs, openSession, stat, tick } from './fakes.js';
import { Policy } from '../../../src/sftp/policy.js';
import { STATUS } from '../../../src/errors.js';

/** A session whose READ at offset 0 waits until releaseFirst() is called. */
function gatedSession() {
  let releaseFirst!: () => void;
  const gate = new Promise<void>((r) => (releaseFirst = r));
  const file = fakeFile({
    read: async (position, into) => {
      if (position === 0) await gate;
      return Math.min(into.length, 4);
    },
  });
  return { ...openSession(fakeFs({}, file)), releaseFirst };
}

describe('SFTP session reply order', () => {
  it('replies leave in the order requests arrived, even when later requests finish first', async () => {
    const { sent, releaseFirst, emit } = gatedSession();
    emit('OPEN', 1, '/f', 1, {});
    await tick();
    const handle = sent[0]!.arg as Buffer;
    emit('READ', 2, handle, 0, 4); // held back by its gate
    emit('READ', 3, handle, 4, 4);
    emit('STAT', 4, '/f');
    await tick(20);
    expect(sent.map((r) => r.id)).toEqual([1]); // nothing overtakes request 2
    releaseFirst();
    await tick(20);
    expect(sent.map((r) => `${r.kind}:${r.id}`)).toEqual(['handle:1', 'data:2', 'data:3', 'attrs:4']);
  });
});

describe('answers to malformed packets', () => {
  it('take their place in the reply order instead of overtaking earlier replies', async () => {
    const { sent, sftp, releaseFirst, emit } = gatedSession();
    emit('OPEN', 1, '/f', 1, {});
    await tick();
    emit('READ', 2, sent[0]!.arg as Buffer, 0, 4); // held back by its gate
    // What the patched ssh2 parser does for a malformed packet with id 3:
    sftp.answerProtocolError?.(3, 5, 'Bad message');
    await tick(20);
    expect(sent.map((r) => r.id)).toEqual([1]);
    releaseFirst();
    await tick(20);
    expect(sent.map((r) => `${r.kind}:${r.id}`)).toEqual(['handle:1', 'data:2', 'status:3']);
  });
});

describe('SFTP session wiring', () => {
  it('an EXTENDED request the table does not know is answered OP_UNSUPPORTED and logged as refused', async () => {
    const { sent, events, emit, session } = openSession();
    emit('EXTENDED', 7, 'nope@example.com', Buffer.alloc(0));
    await tick();
    expect(sent).toEqual([{ kind: 'status', id: 7, arg: STATUS.OP_UNSUPPORTED, message: 'Operation unsupported' }]);
    expect(events).toMatchObject([{ event: 'request.refused', what: 'extended:nope@example.com', why: 'unsupported' }]);
    expect(session.totals.requests).toBe(1);
  });

  it('a request the policy refuses is PERMISSION_DENIED, logged with the reason, and counted as an error', async () => {
    const policy = new Policy({ readOnly: false, denyRequests: new Set(['stat']) });
    const { sent, events, emit, session } = openSession(fakeFs(), { policy });
    emit('STAT', 1, '/f');
    await tick();
    expect(sent).toMatchObject([{ kind: 'status', id: 1, arg: STATUS.PERMISSION_DENIED }]);
    expect(events).toMatchObject([{ event: 'request.refused', what: 'stat', why: 'policy', detail: '"stat" is in denyRequests' }]);
    expect(session.totals.errors).toBe(1);
  });

  it('relative paths start at the start directory', async () => {
    const seen: string[] = [];
    const { emit } = openSession(fakeFs({ stat: async (p) => (seen.push(p), stat) }));
    emit('STAT', 1, 'a/b');
    emit('STAT', 2, '.');
    await tick();
    expect(seen).toEqual(['/home/a/b', '/home']);
  });

  it('close() waits for the request in flight, then closes open files and logs them incomplete', async () => {
    const { sent, events, emit, session, releaseFirst } = gatedSession();
    emit('OPEN', 1, '/f', 1, {});
    await tick();
    emit('READ', 2, sent[0]!.arg as Buffer, 0, 4);
    await tick();
    expect(session.inflight).toBe(1);
    const closed = session.close(1000);
    await tick();
    expect(session.openHandles).toBe(1); // still waiting for the READ
    releaseFirst();
    await closed;
    expect(session.openHandles).toBe(0);
    expect(events).toMatchObject([{ event: 'transfer', path: '/f', status: 'incomplete', bytesRead: 4 }]);
  });
});
