import { afterEach, describe, it, expect } from 'vitest';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Listener } from '../../../src/ssh/listener.js';
import { Admission } from '../../../src/ssh/admission.js';
import { validateConfig, type ServerConfig } from '../../../src/config/load.js';
import { Audit } from '../../../src/audit/events.js';
import { EventLog } from '../../../src/audit/memory-sink.js';

function config(o: { listen?: Record<string, unknown>; limits?: Record<string, unknown> } = {}): ServerConfig {
  return validateConfig({ ...o, users: [{ username: 'u', password: 'p', root: '/srv/u' }] }, { baseDir: '/', checkFiles: false });
}

const running: { listener: Listener; clients: Socket[] }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    for (const c of r.clients) c.destroy();
    const closed = r.listener.close();
    r.listener.destroySockets();
    await closed;
  }
});

/** A listener on a free port whose admitted sockets are collected instead of handed to ssh2. */
async function start(c: ServerConfig) {
  const audit = new Audit('test');
  const log = new EventLog();
  audit.addSink(log);
  const handedOver: Socket[] = [];
  const listener = new Listener(c, { audit, admission: new Admission(c, audit), handOver: (s) => handedOver.push(s) });
  const port = await listener.listen(0, '127.0.0.1');
  const clients: Socket[] = [];
  running.push({ listener, clients });
  const dial = async (first?: string) => {
    const s = connect(port, '127.0.0.1');
    clients.push(s);
    s.on('error', () => undefined);
    await once(s, 'connect');
    if (first !== undefined) s.write(first);
    return s;
  };
  return { listener, log, handedOver, dial };
}

const closed = (s: Socket) => (s.closed ? Promise.resolve() : once(s, 'close'));

describe('Listener', () => {
  it('times out a client that sends no SSH identification and records how it ended', async () => {
    const { log, dial } = await start(config({ limits: { loginGraceSeconds: 0.2 } }));
    await closed(await dial());
    await log.waitFor('connection.close');
    expect(log.ofType('request.refused')).toEqual([expect.objectContaining({ what: 'connection', why: 'login-grace-exceeded', detail: 'no SSH identification received' })]);
    expect(log.ofType('connection.close')).toEqual([expect.objectContaining({ stage: 'ident', reason: 'login grace time exceeded' })]);
  });

  it('records a client that leaves before identifying, and nothing for one ssh2 identified', async () => {
    const { listener, log, handedOver, dial } = await start(config());
    (await dial()).end();
    await log.waitFor('connection.close');
    expect(log.ofType('connection.close')).toEqual([expect.objectContaining({ stage: 'ident', reason: 'closed by the client before identifying' })]);
    const client = await dial('SSH-2.0-x\r\n');
    await expect.poll(() => handedOver.length).toBe(2);
    listener.identified(handedOver[1]!);
    client.destroy();
    await closed(handedOver[1]!);
    expect(log.ofType('connection.close')).toHaveLength(1);
  });

  it('refuses connections beyond maxConnections, and reload changes the limit', async () => {
    const { listener, log, handedOver, dial } = await start(config({ limits: { maxConnections: 1 } }));
    await dial();
    await closed(await dial());
    expect(log.ofType('request.refused')).toEqual([expect.objectContaining({ why: 'too-many-connections', detail: 'more than 1 connections' })]);
    listener.reload(config({ limits: { maxConnections: 2 } }));
    await dial();
    await expect.poll(() => handedOver.length).toBe(2);
  });

  it('with PROXY required, takes the client address from a trusted peer and refuses an untrusted one', async () => {
    const trusted = await start(config({ listen: { proxyProtocol: 'required' } }));
    await trusted.dial('PROXY TCP4 192.0.2.9 192.0.2.1 5000 22\r\nSSH-2.0-x\r\n');
    await expect.poll(() => trusted.handedOver.length).toBe(1);
    expect(trusted.handedOver[0]).toMatchObject({ remoteAddress: '192.0.2.9', remotePort: 5000, remoteFamily: 'IPv4' });
    const untrusted = await start(config({ listen: { proxyProtocol: 'required', proxyTrusted: ['10.0.0.0/8'] } }));
    await closed(await untrusted.dial());
    expect(untrusted.log.ofType('request.refused')).toEqual([expect.objectContaining({ why: 'proxy-untrusted' })]);
    expect(untrusted.handedOver).toEqual([]);
  });

  it('refuses a malformed PROXY header with its reason', async () => {
    const { log, handedOver, dial } = await start(config({ listen: { proxyProtocol: 'required' } }));
    await closed(await dial('SSH-2.0-not-a-proxy-header\r\n'));
    await log.waitFor('request.refused');
    expect(log.ofType('request.refused')).toEqual([expect.objectContaining({ why: 'proxy-protocol', detail: expect.stringMatching(/PROXY/) })]);
    expect(handedOver).toEqual([]);
  });

  it('stops accepting on close: listening turns false and the port refuses', async () => {
    const { listener, dial } = await start(config());
    expect(listener.listening).toBe(true);
    const done = listener.close();
    expect(listener.listening).toBe(false);
    await done;
    await expect(dial()).rejects.toThrow(/ECONNREFUSED/);
  });
});
