/** Counts by key (connections per address, sessions per user) that forget a key once it reaches zero. */
export class Tally {
  readonly #counts = new Map<string, number>();

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  add(key: string, delta: number): void {
    const n = this.get(key) + delta;
    if (n <= 0) this.#counts.delete(key);
    else this.#counts.set(key, n);
  }
}
