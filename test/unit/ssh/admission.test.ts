import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Admission, type PeerMessage, type Peers } from '../../../src/ssh/admission.js';
import { validateConfig, type ServerConfig, type UserRecord } from '../../../src/config/load.js';
import { Audit } from '../../../src/audit/events.js';
import { EventLog } from '../../../src/audit/memory-sink.js';

function config(limits: Record<string, unknown> = {}, users: Record<string, unknown>[] = [{}]): ServerConfig {
  return validateConfig({ limits, users: users.map((u, i) => ({ username: `u${i}`, password: 'p', root: `/srv/u${i}`, ...u })) }, { baseDir: '/', checkFiles: false });
}

/** Two workers' Admissions connected as the cluster primary connects them. */
function peerPair(): [Peers, Peers] {
  const handlers: ((m: PeerMessage) => void)[][] = [[], []];
  const side = (me: number): Peers => ({ send: (m) => handlers[1 - me]!.forEach((h) => h(m)), onMessage: (h) => handlers[me]!.push(h) });
  return [side(0), side(1)];
}

const socketFrom = (ip: string) => Object.assign(new EventEmitter(), { remoteAddress: ip }) as unknown as Socket;

function admission(c: ServerConfig, peers?: Peers): { a: Admission; log: EventLog } {
  const audit = new Audit('test');
  const log = new EventLog();
  audit.addSink(log);
  return { a: new Admission(c, audit, peers), log };
}

describe('Admission', () => {
  it('refuses a penalised source with a request.refused record saying until when', () => {
    const { a, log } = admission(config({ penalty: { threshold: 1, authFailSeconds: 60 } }));
    expect(a.authFailed('192.0.2.7')).toBe(60);
    expect(a.admitConnection(socketFrom('192.0.2.7'), '192.0.2.7:1')).toBe(false);
    expect(log.ofType('request.refused')).toEqual([expect.objectContaining({ remote: '192.0.2.7:1', what: 'connection', why: 'penalty', detail: expect.stringMatching(/^refused until \d{4}-/) })]);
    expect(a.admitConnection(socketFrom('192.0.2.8'), '192.0.2.8:1')).toBe(true);
  });

  it('a login stops its socket counting as an unauthenticated startup (maxStartups)', () => {
    const { a, log } = admission(config({ maxStartups: '1' }));
    const first = socketFrom('192.0.2.7');
    expect(a.admitConnection(first, 'r')).toBe(true);
    expect(a.admitConnection(socketFrom('192.0.2.8'), 'r')).toBe(false);
    a.authSucceeded('192.0.2.7', first);
    expect(a.admitConnection(socketFrom('192.0.2.8'), 'r')).toBe(true);
    expect(log.ofType('request.refused').map((e) => e.why)).toEqual(['too-many-startups']);
  });

  it('a closed connection no longer counts against its source (maxConnectionsPerSource)', () => {
    const { a } = admission(config({ maxConnectionsPerSource: 1 }));
    const first = socketFrom('192.0.2.7');
    expect(a.admitConnection(first, 'r')).toBe(true);
    expect(a.admitConnection(socketFrom('192.0.2.7'), 'r')).toBe(false);
    first.emit('close');
    expect(a.admitConnection(socketFrom('192.0.2.7'), 'r')).toBe(true);
  });

  it('counts sessions per user against the lower of maxSessions and maxSessionsPerUser, and refuses all once draining', () => {
    const c = config({ maxSessionsPerUser: 2 }, [{ maxSessions: 1 }, {}]);
    const { a } = admission(c);
    const [u0, u1] = c.users as [UserRecord, UserRecord];
    expect([a.admitSession(u0), a.admitSession(u0)]).toEqual([null, 'too-many-sessions']);
    expect([a.admitSession(u1), a.admitSession(u1), a.admitSession(u1)]).toEqual([null, null, 'too-many-sessions']);
    a.releaseSession(u1);
    expect(a.admitSession(u1)).toBeNull();
    a.releaseSession(u0);
    a.drain();
    expect(a.admitSession(u0)).toBe('server shutting down');
  });

  it("counts the other workers' sessions and penalties (peers)", () => {
    const c = config({ maxSessionsPerUser: 1, penalty: { threshold: 2 } });
    const [p0, p1] = peerPair();
    const { a: w0 } = admission(c, p0);
    const { a: w1 } = admission(c, p1);
    const user = c.users[0]!;
    expect(w0.admitSession(user)).toBeNull();
    expect(w1.admitSession(user)).toBe('too-many-sessions');
    w0.releaseSession(user);
    expect(w1.admitSession(user)).toBeNull();
    w0.authFailed('192.0.2.7');
    expect(w1.authFailed('192.0.2.7')).toBeGreaterThan(0);
  });

  it('allows a user with allowFrom only from those addresses, and reload replaces the lists', () => {
    const c = config({}, [{ allowFrom: ['10.0.0.0/8'] }, {}]);
    const { a } = admission(c);
    const [u0, u1] = c.users as [UserRecord, UserRecord];
    expect([a.sourceAllowed(u0, '10.1.2.3'), a.sourceAllowed(u0, '192.0.2.7'), a.sourceAllowed(u1, '192.0.2.7')]).toEqual([true, false, true]);
    a.reload(config({}, [{ allowFrom: ['192.0.2.0/24'] }]));
    expect([a.sourceAllowed(u0, '10.1.2.3'), a.sourceAllowed(u0, '192.0.2.7')]).toEqual([false, true]);
  });
});
