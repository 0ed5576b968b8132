/**
 * READ backpressure and READ buffers. Bytes of READs being served plus reply bytes waiting for the
 * client's window stay under maxInflightBytes; beyond it READs wait. Their buffers come from the
 * shared pool (read-buffers.ts) and go back once ssh2 has sent them, even when the reply had to
 * wait for the client's window.
 */
import type { SFTPWrapper } from 'ssh2';
import { readBuffers } from './read-buffers.js';

/** What the budget needs of the channel. */
export type ReplyChannel = Pick<SFTPWrapper, 'dataInPlace'> & { outgoingBytes?: (() => number) | undefined };

/** Ends a reservation; calling it again does nothing. */
export type Release = () => void;

export class ReadBudget {
  readonly #channel: ReplyChannel;
  readonly #cap: number;
  readonly #state: { readonly ending: boolean };
  #queue: { len: number; resolve: (release: Release) => void }[] = [];
  #reserved = 0;
  /** READ buffers ssh2 kept for replies waiting for the client's window, by their memory. */
  readonly #kept = new Map<ArrayBufferLike, Buffer>();

  /** `state.ending`: the session is closing, and every READ is let through to fail at once. */
  constructor(channel: ReplyChannel, maxInflightBytes: number, state: { readonly ending: boolean }) {
    this.#channel = channel;
    this.#cap = maxInflightBytes;
    this.#state = state;
  }

  /** Bytes reserved by READs being served (not yet handed to ssh2). */
  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Waits until `len` bytes fit. Reservations are granted strictly in request order: a reservation
   * ends when its reply is sent, replies leave in request order, so a later READ holding budget
   * while an earlier one waits would wait on it forever.
   */
  reserve(len: number): Promise<Release> {
    if (this.#state.ending || (this.#queue.length === 0 && this.#fits(len))) return Promise.resolve(this.#grant(len));
    return new Promise((resolve) => this.#queue.push({ len, resolve }));
  }

  /** Grants waiting READs from the head of the queue while they fit (all of them once ending). */
  grant(): void {
    for (let head = this.#queue[0]; head && (this.#state.ending || this.#fits(head.len)); head = this.#queue[0]) {
      this.#queue.shift();
      head.resolve(this.#grant(head.len));
    }
  }

  #grant(len: number): Release {
    this.#reserved += len;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#reserved -= len;
      this.grant();
    };
  }

  #fits(len: number): boolean {
    const queued = this.#channel.outgoingBytes?.() ?? 0;
    // One READ may always run when nothing is reserved, so progress is certain.
    return queued <= this.#cap && (this.#reserved === 0 || this.#reserved + len + queued <= this.#cap);
  }

  take(): Buffer {
    return readBuffers.take();
  }
  give(buf: Buffer): void {
    readBuffers.give(buf);
  }

  /** Sends a DATA reply built in place; a buffer ssh2 keeps (client window full) is given back by sent(). */
  send(id: number, buf: Buffer, n: number): void {
    if (this.#channel.dataInPlace(id, buf, n)) readBuffers.give(buf);
    else this.#kept.set(buf.buffer, buf);
  }

  /**
   * A reply that waited for the window has been sent: its READ buffer goes back to the pool
   * (otherwise every such reply costs a fresh 255 KiB buffer, and the GC that comes with it).
   */
  sent(payload: Buffer): void {
    const buf = this.#kept.get(payload.buffer);
    if (buf === undefined) return;
    this.#kept.delete(payload.buffer);
    readBuffers.give(buf);
  }
}
