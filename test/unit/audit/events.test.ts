import { describe, it, expect } from 'vitest';
import { Audit, type AuditRecord } from '../../../src/audit/events.js';
import { core } from './samples.js';

describe('Audit', () => {
  it('stamps time, level, server and its extra fields on every record, warnings at "warn"', () => {
    const audit = new Audit('srv', { worker: 2 });
    const got: AuditRecord[] = [];
    audit.addSink({ write: (r) => got.push(r) });
    audit.emit({ event: 'session.open', ...core, client: 'SSH-2.0-x' });
    audit.emit({ event: 'server.warning', code: 'config', message: 'm' });
    expect(got[0]).toMatchObject({ level: 'info', server: 'srv', worker: 2, event: 'session.open', user: 'alice' });
    expect(got[1]).toMatchObject({ level: 'warn', code: 'config' });
    expect(Date.parse(got[0]!.time)).not.toBeNaN();
  });

  it('a sink that throws does not keep the record from the other sinks', () => {
    const audit = new Audit('srv');
    const got: AuditRecord[] = [];
    audit.addSink({ write: () => { throw new Error('disk gone'); } });
    audit.addSink({ write: (r) => got.push(r) });
    expect(() => audit.emit({ event: 'server.start', message: 'up' })).not.toThrow();
    expect(got).toHaveLength(1);
  });
});
