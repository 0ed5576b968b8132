/**
 * A token bucket for one connection's warning records (protocol errors, refusals). A client that
 * sends malformed packets as fast as it can would otherwise write a record per packet — gigabytes
 * an hour into the operator's log. A burst passes whole, then `perSecond` records a second; what is
 * left is counted, and the count goes into the connection's `session.close` record.
 */
export class LogBudget {
  #tokens: number;
  #last: number;
  /** Records refused so far. */
  suppressed = 0;

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    now = Date.now(),
  ) {
    this.#tokens = burst;
    this.#last = now;
  }

  /** True when one more record may be written now. */
  take(now = Date.now()): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.suppressed++;
    return false;
  }
}
