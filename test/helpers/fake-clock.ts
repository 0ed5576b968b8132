/**
 * Clocks for bandwidth tests (src/sftp/token-bucket.ts's Clock), so no test measures wall-clock time.
 * ManualClock moves only when a test says so; SimulatedClock jumps to each timer as soon as the event
 * loop is free, so a limited transfer through a real server runs at full speed in simulated seconds.
 */
import type { Clock } from '../../src/sftp/token-bucket.js';

interface Timer {
  at: number;
  fn: () => void;
}

abstract class TimerList implements Clock {
  protected time = 0;
  protected timers: Timer[] = [];

  now(): number {
    return this.time;
  }

  /** Timers set and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.length;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const t = { at: this.time + ms, fn };
    this.timers.push(t);
    this.timers.sort((a, b) => a.at - b.at);
    this.scheduled();
    return () => {
      this.timers = this.timers.filter((x) => x !== t);
    };
  }

  protected scheduled(): void {}

  /** Fires the earliest timer (time moves to it); false when there is none due by `limit`. */
  protected fireNext(limit = Infinity): boolean {
    const t = this.timers[0];
    if (!t || t.at > limit) return false;
    this.timers.shift();
    this.time = Math.max(this.time, t.at);
    t.fn();
    return true;
  }
}

/** Lets promise callbacks and I/O callbacks queued so far run. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class ManualClock extends TimerList {
  /** Moves time forward by `ms`, firing due timers in order and letting what they resolve run. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    while (this.fireNext(end)) await settle();
    this.time = end;
    await settle();
  }
}

export class SimulatedClock extends TimerList {
  #ticking = false;

  protected override scheduled(): void {
    if (this.#ticking) return;
    this.#ticking = true;
    setImmediate(() => this.#tick());
  }

  #tick(): void {
    this.#ticking = false;
    if (this.fireNext()) this.scheduled();
  }
}
