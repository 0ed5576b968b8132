/** The server's open SSH connections: counted, asked which roots they use, ended at shutdown. */
import { DISCONNECT, type ClientConnection } from '../ssh/connection.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Connections {
  readonly #all = new Set<ClientConnection>();

  add(c: ClientConnection): void {
    this.#all.add(c);
    void c.closed.then(() => this.#all.delete(c));
  }

  get size(): number {
    return this.#all.size;
  }

  /** After a reload: connections of users now disabled or expired end (ClientConnection#checkAccount). */
  checkAccounts(): void {
    for (const c of this.#all) c.checkAccount();
  }

  usesRoot(root: string): boolean {
    return [...this.#all].some((c) => c.user?.root === root);
  }

  /**
   * Busy connections get up to graceMs to finish; then every one is told the server is shutting
   * down. A client that stops reading never completes the close handshake: after a second `cut`
   * runs (it destroys the sockets).
   */
  async endAll(graceMs: number, cut: () => void): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.#all].some((c) => c.busy)) await sleep(50);
    const waits = Promise.all([...this.#all].map((c) => c.closed));
    for (const c of this.#all) c.end('server shutdown', DISCONNECT.byApplication('Server shutting down'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([waits, new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    cut();
    await Promise.race([waits, sleep(0)]);
  }
}
