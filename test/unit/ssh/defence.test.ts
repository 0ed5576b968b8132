import { describe, it, expect } from 'vitest';
import { Defence, parseMaxStartups, type DefenceOptions } from '../../../src/ssh/defence.js';

const options = (o: Partial<DefenceOptions> = {}): DefenceOptions => ({
  maxStartups: '100',
  maxConnectionsPerSource: 100,
  penalty: { enabled: true, authFailSeconds: 5, maxSeconds: 12, threshold: 3 },
  ...o,
});

describe('Defence', () => {
  it('after `threshold` failures refuses the source for authFailSeconds, doubling on each repeat up to maxSeconds', () => {
    const d = new Defence(options());
    const t = 1_000_000;
    expect([d.authFailed('a', t), d.authFailed('a', t)]).toEqual([0, 0]);
    expect(d.authFailed('a', t)).toBe(5);
    expect(d.admitConnection('a', t + 4_999)).toBe('penalty');
    expect(d.blockedUntil('a')).toBe(t + 5_000);
    expect(d.admitConnection('a', t + 5_000)).toBeNull();
    for (let i = 0; i < 2; i++) d.authFailed('a', t);
    expect(d.authFailed('a', t)).toBe(10);
    for (let i = 0; i < 2; i++) d.authFailed('a', t);
    expect(d.authFailed('a', t)).toBe(12);
  });

  it('a successful login clears the source; other sources are untouched; disabled penalties never block', () => {
    const d = new Defence(options());
    d.authFailed('a');
    d.authFailed('a');
    d.authSucceeded('a');
    expect(d.authFailed('a')).toBe(0);
    expect(d.admitConnection('b')).toBeNull();
    const off = new Defence(options({ penalty: { enabled: false, authFailSeconds: 5, maxSeconds: 5, threshold: 1 } }));
    expect(off.authFailed('a')).toBe(0);
    expect(off.admitConnection('a')).toBeNull();
  });

  it('caps connections per source until they close', () => {
    const d = new Defence(options({ maxConnectionsPerSource: 2 }));
    expect([d.admitConnection('a'), d.admitConnection('a'), d.admitConnection('a')]).toEqual([null, null, 'too-many-connections-from-source']);
    d.connectionClosed('a');
    expect(d.admitConnection('a')).toBeNull();
  });

  it('maxStartups "start:rate:full": none refused below start, rate% at start, all at full', () => {
    let roll = 0;
    const d = new Defence(options({ maxStartups: '2:50:4' }), () => roll);
    expect([d.admitConnection('a'), d.admitConnection('b')]).toEqual([null, null]);
    roll = 0.49; // below 50%: refused
    expect(d.admitConnection('c')).toBe('too-many-startups');
    roll = 0.5;
    expect(d.admitConnection('c')).toBeNull();
    roll = 0.99; // 3 startups: 75% refused
    expect(d.admitConnection('d')).toBeNull();
    roll = 1;
    expect(d.admitConnection('e')).toBe('too-many-startups');
    d.startupDone();
    expect(d.admitConnection('e')).toBeNull();
  });

  it('parseMaxStartups reads "n" as "n:100:n"', () => {
    expect(parseMaxStartups('10')).toEqual({ start: 10, rate: 100, full: 10 });
    expect(parseMaxStartups('10:30:100')).toEqual({ start: 10, rate: 30, full: 100 });
  });
});
