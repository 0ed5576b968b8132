import { describe, it, expect } from 'vitest';
import { readFileSync, renameSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import type { AuditRecord } from '../../../src/audit/events.js';
import { JsonSink, PrettySink } from '../../../src/audit/pino-sink.js';
import { SAMPLES, fanout, tempDir } from './samples.js';

describe('JsonSink', () => {
  it('writes one parseable record per event with the core fields', async () => {
    const file = join(tempDir('sink-'), 'a.json');
    const { audit } = fanout();
    audit.addSink(new JsonSink({ file, level: 'info', sync: true }));
    for (const e of SAMPLES) audit.emit(e);
    await audit.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(SAMPLES.length);
    const recs = lines.map((l) => JSON.parse(l) as AuditRecord);
    recs.forEach((r, i) => {
      expect(r).toMatchObject({ ...SAMPLES[i], level: r.event === 'protocol.error' ? 'warn' : 'info', server: 'test-server' });
      expect(Date.parse(r.time)).not.toBeNaN();
    });
  });

  it('reopens its file after rotation (SIGUSR1)', async () => {
    const file = join(tempDir('sink-'), 'a.json');
    const { audit } = fanout();
    audit.addSink(new JsonSink({ file, level: 'info', sync: true }));
    audit.emit(SAMPLES[0]!);
    renameSync(file, file + '.1');
    audit.reopen();
    audit.emit(SAMPLES[1]!);
    await audit.close();
    expect(readFileSync(file + '.1', 'utf8').trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ event: 'auth.failure' });
  });
});

describe('PrettySink', () => {
  it('writes one escaped line per event', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const { audit } = fanout();
    audit.addSink(new PrettySink('info', out));
    for (const e of SAMPLES) audit.emit(e);
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(SAMPLES.length);
    expect(lines[1]).toContain('auth.failure');
    expect(lines[1]).toContain('x\\nFailed');
  });
});
