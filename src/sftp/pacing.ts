/**
 * The client is paced, never refused: a refused WRITE is a corrupted upload. At
 * maxRequestsInFlight, or while more than maxInflightBytes of replies wait for its window (a
 * client that sends and does not read), ssh2 stops parsing its requests and withholds its window
 * until half of them are done and the replies have drained (OpenSSH's sftp-server likewise reads
 * only while its output has room).
 */
import type { SFTPWrapper } from 'ssh2';
import { MAX_PACKET } from './read-buffers.js';

export interface PacingLimits {
  readonly maxRequestsInFlight: number;
  readonly maxInflightBytes: number;
}

type Input = Pick<SFTPWrapper, 'pauseInput' | 'resumeInput'> & { outgoingBytes?: (() => number) | undefined };

export class Pacing {
  #paused = false;
  readonly #input: Input;
  readonly #limits: PacingLimits;
  readonly #state: { readonly closed: boolean };
  readonly #drop: (why: string) => void;

  /** `drop` ends the connection (a listener threw while parsing what waited). */
  constructor(input: Input, limits: PacingLimits, state: { readonly closed: boolean }, drop: (why: string) => void) {
    this.#input = input;
    this.#limits = limits;
    this.#state = state;
    this.#drop = drop;
  }

  /** A request started; `inflight` are running now. */
  started(inflight: number): void {
    if (inflight < this.#limits.maxRequestsInFlight && !this.#backlogged()) return;
    if (this.#paused) return;
    this.#paused = true;
    this.#input.pauseInput();
  }

  /** A request ended or replies drained: parses the requests that waited (they may pause input again) and grants the window. */
  resume(inflight: number): void {
    if (!this.#paused || inflight > this.#limits.maxRequestsInFlight / 2 || this.#backlogged()) return;
    this.#paused = false;
    if (this.#state.closed) return;
    try {
      this.#input.resumeInput();
    } catch (e) {
      // As on the socket's data path, end the connection.
      this.#drop(`error parsing queued requests: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Replies waiting for the client's window beyond what READs alone can queue (their budget plus one
   * READ): the client sends and does not read. Downloads never reach it.
   */
  #backlogged(): boolean {
    return (this.#input.outgoingBytes?.() ?? 0) > this.#limits.maxInflightBytes + MAX_PACKET;
  }
}
