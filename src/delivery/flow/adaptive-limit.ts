/**
 * An adaptive concurrency limit (AIMD, latency-aware): the number of requests a provider may have
 * in flight grows by about one per round trip while answers come back fast and clean, and shrinks
 * multiplicatively on 429, 5xx and timeouts, or when latency climbs well above its baseline — so
 * Herald sends as fast as the provider takes, and backs off before it is told to (I6).
 */
export class AdaptiveLimit {
  #limit: number;
  #inFlight = 0;
  #baselineMs: number | undefined;

  constructor(
    private readonly min: number,
    private readonly max: number,
    initial: number,
    /** Latency above `tolerance` × baseline counts as congestion. */
    private readonly tolerance = 3,
  ) {
    this.#limit = Math.min(max, Math.max(min, initial));
  }

  get limit(): number {
    return Math.floor(this.#limit);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  tryAcquire(): boolean {
    if (this.#inFlight >= this.limit) return false;
    this.#inFlight++;
    return true;
  }

  /** A request finished: `congested` for 429/5xx/timeouts, else its latency decides. */
  release(latencyMs: number, congested: boolean): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (congested) {
      this.#limit = Math.max(this.min, this.#limit * 0.7);
      return;
    }
    // The baseline follows the fastest recent answers, drifting up slowly so it can recover.
    this.#baselineMs = this.#baselineMs === undefined ? latencyMs : Math.min(latencyMs, this.#baselineMs * 1.01 + 0.1);
    if (latencyMs > this.#baselineMs * this.tolerance + 5) {
      this.#limit = Math.max(this.min, this.#limit * 0.95);
    } else if (this.#inFlight + 1 >= this.limit) {
      // Only grow when the limit is what holds us back.
      this.#limit = Math.min(this.max, this.#limit + 1 / this.#limit);
    }
  }
}
