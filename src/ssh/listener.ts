/**
 * Our own TCP listener in front of ssh2: the connection cap, the PROXY protocol, per-source
 * admission, and the time limit until the client's SSH identification (ssh2 sees a connection only
 * once that arrives, so a client that never sends one is timed out and recorded here).
 */
import { BlockList, createServer, isIPv6, type Server as NetServer, type Socket } from 'node:net';
import type { AuditEmitter } from '../audit/events.js';
import type { CloseReason } from '../audit/codes.js';
import { formatRemote } from '../audit/escape.js';
import type { ServerConfig } from '../config/load.js';
import { addressInList, parseCidrList } from '../parse/cidr.js';
import type { Admission } from './admission.js';
import { readProxyHeader, type ProxyMode, type ProxySource } from './proxy-protocol.js';
import { tuneSocket } from './socket-tuning.js';

export interface ListenerDeps {
  audit: AuditEmitter;
  admission: Admission;
  /** Hands an admitted socket to ssh2. */
  handOver(socket: Socket): void;
}

/** What the listener reads of the config (replaced on reload). */
interface ListenerSettings {
  maxConnections: number;
  proxyProtocol: ProxyMode;
  proxyTrusted: BlockList;
  loginGraceMs: number;
}

function settingsOf(c: ServerConfig): ListenerSettings {
  const trusted = parseCidrList(c.listen.proxyTrusted);
  return {
    maxConnections: c.limits.maxConnections,
    proxyProtocol: c.listen.proxyProtocol,
    proxyTrusted: trusted instanceof Error ? new BlockList() : trusted,
    loginGraceMs: c.limits.loginGraceSeconds * 1000,
  };
}

export class Listener {
  readonly #tcp: NetServer;
  readonly #deps: ListenerDeps;
  #settings: ListenerSettings;
  readonly #sockets = new Set<Socket>();
  /** Sockets whose SSH identification ssh2 received (it then made a ClientConnection, which logs the end). */
  readonly #identified = new WeakSet<Socket>();
  #listening = false;
  #draining = false;

  constructor(config: ServerConfig, deps: ListenerDeps) {
    this.#settings = settingsOf(config);
    this.#deps = deps;
    this.#tcp = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    this.#tcp.on('error', (err) => deps.audit.emit({ event: 'server.warning', code: 'listener-error', message: `listener error: ${err.message}` }));
  }

  reload(config: ServerConfig): void {
    this.#settings = settingsOf(config);
  }

  /** Resolves with the port once listening. */
  listen(port: number, host: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#tcp.once('error', reject);
      this.#tcp.listen(port, host, () => {
        this.#tcp.off('error', reject);
        this.#listening = true;
        const address = this.#tcp.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** ssh2 received this socket's identification: from now on its ClientConnection records the end. */
  identified(socket: Socket): void {
    this.#identified.add(socket);
  }

  /** Stops accepting; resolves once every connection is gone (see destroySockets). */
  close(): Promise<void> {
    this.#draining = true;
    this.#listening = false;
    return new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
  }

  destroySockets(): void {
    for (const s of this.#sockets) s.destroy();
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const peer = formatRemote(socket.remoteAddress, socket.remotePort);
    const { maxConnections, proxyProtocol: mode, proxyTrusted } = this.#settings;
    if (this.#draining) return void socket.destroy();
    if (this.#sockets.size > maxConnections) return this.#refuse(socket, peer, 'too-many-connections', `more than ${maxConnections} connections`);
    if (mode === 'off') return this.#admit(socket);
    if (!addressInList(proxyTrusted, socket.remoteAddress ?? '')) {
      // Only the load balancers may speak PROXY; in 'optional' mode anyone else is a direct client.
      if (mode === 'optional') return this.#admit(socket);
      return this.#refuse(socket, peer, 'proxy-untrusted', 'PROXY protocol required and the peer is not in listen.proxyTrusted');
    }
    this.#readProxy(socket, peer, mode);
  }

  #refuse(socket: Socket, remote: string, why: 'too-many-connections' | 'proxy-untrusted' | 'proxy-protocol', detail: string): void {
    this.#deps.audit.emit({ event: 'request.refused', remote, what: 'connection', why, detail });
    socket.destroy();
  }

  /** Read before anything listens for 'data': the header never reaches ssh2, the bytes after it do. */
  #readProxy(socket: Socket, peer: string, mode: Exclude<ProxyMode, 'off'>): void {
    readProxyHeader(socket, { mode, timeoutMs: this.#settings.loginGraceMs }).then(
      (source) => {
        if (socket.destroyed) return;
        if (this.#draining) return void socket.destroy();
        if (source) takeAddress(socket, source);
        this.#admit(socket);
      },
      (err: Error) => {
        if (this.#draining) return void socket.destroy();
        this.#refuse(socket, peer, 'proxy-protocol', err.message.slice(0, 300));
      },
    );
  }

  /** Per-source admission and hand-over to ssh2, with the client's own address (after any PROXY header). */
  #admit(socket: Socket): void {
    const remote = formatRemote(socket.remoteAddress, socket.remotePort);
    if (!this.#deps.admission.admitConnection(socket, remote)) return void socket.destroy();
    this.#timeIdentification(socket, remote);
    tuneSocket(socket);
    this.#deps.handOver(socket);
  }

  /** Until the client's SSH ident arrives ssh2 does not see the connection: time it out, and record its end, here. */
  #timeIdentification(socket: Socket, remote: string): void {
    const opened = Date.now();
    let ended: CloseReason | undefined;
    const timer = setTimeout(() => {
      this.#deps.audit.emit({ event: 'request.refused', remote, what: 'connection', why: 'login-grace-exceeded', detail: 'no SSH identification received' });
      ended = 'login grace time exceeded';
      socket.destroy();
    }, this.#settings.loginGraceMs);
    timer.unref();
    socket.once('data', () => clearTimeout(timer));
    socket.once('error', (e: Error) => (ended ??= `error: ${e.message.slice(0, 200)}`));
    socket.once('close', () => {
      clearTimeout(timer);
      if (this.#identified.has(socket)) return;
      const reason = ended ?? (this.#draining ? 'server shutdown' : 'closed by the client before identifying');
      this.#deps.audit.emit({ event: 'connection.close', remote, stage: 'ident', reason, durationMs: Date.now() - opened });
    });
  }
}

/** The client's address (from the PROXY header) becomes the connection's: ssh2's info.ip, the audit's remote, penalties, allowFrom. */
function takeAddress(socket: Socket, source: ProxySource): void {
  Object.defineProperty(socket, 'remoteAddress', { value: source.ip, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: source.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', { value: isIPv6(source.ip) ? 'IPv6' : 'IPv4', configurable: true });
}
