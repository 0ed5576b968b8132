/**
 * Replies leave in the order requests arrived, as from OpenSSH's sequential sftp-server, though the
 * requests run concurrently: OpenSSH's own client (scp, `get -a`) truncates a download whose READ
 * replies come back reordered. (pkg/sftp keeps the same rule in packet-manager.go.)
 */

/** Sends one answer to the client; called when the request's turn has come. */
export type Reply = () => void;

export class ReplyOrder {
  #tail: Promise<void> = Promise.resolve();
  readonly #isOpen: () => boolean;

  /** `isOpen` false: the channel is gone, and replies whose turn comes are dropped. */
  constructor(isOpen: () => boolean) {
    this.#isOpen = isOpen;
  }

  /** Reserves the next place in the order; the function it returns sends once every earlier reply left. */
  slot(): (reply: Reply) => void {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => (release = r));
    return (reply) => {
      void previous.then(() => {
        this.#send(reply);
        release();
      });
    };
  }

  #send(reply: Reply): void {
    if (!this.#isOpen()) return;
    try {
      reply();
    } catch {
      // The channel closed under us; nothing left to answer.
    }
  }
}
