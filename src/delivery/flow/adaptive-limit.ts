/**
 * An adaptive concurrency limit (AIMD, latency-aware): how many requests a provider may have in
 * flight. It starts by doubling about once per round trip (slow start) until the first sign of
 * congestion, then grows by about one per round trip while answers come back fast and clean. It
 * shrinks multiplicatively on 429, 5xx and timeouts, or when latency climbs well above its
 * baseline — at most once per cool-down, so one burst of slow answers is one signal, not hundreds.
 * Herald sends as fast as the provider takes, and backs off before it is told to (I6).
 */
export interface AdaptiveLimitOptions {
  /** Latency above `tolerance` × baseline + `slackMs` counts as congestion. */
  tolerance?: number;
  slackMs?: number;
  /** Decreases are at least this far apart (and at least one baseline round trip). */
  cooldownMs?: number;
}

export class AdaptiveLimit {
  #limit: number;
  #inFlight = 0;
  #baselineMs: number | undefined;
  #slowStart = true;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  readonly #tolerance: number;
  readonly #slackMs: number;
  readonly #cooldownMs: number;

  constructor(
    private readonly min: number,
    private readonly max: number,
    initial: number,
    options: AdaptiveLimitOptions = {},
  ) {
    this.#limit = Math.min(max, Math.max(min, initial));
    this.#tolerance = options.tolerance ?? 2;
    this.#slackMs = options.slackMs ?? 100;
    this.#cooldownMs = options.cooldownMs ?? 100;
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

  /** Gives a slot back without a measurement (the request was never made). */
  cancel(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  /** A request finished at `nowMs`: `congested` for 429/5xx/timeouts, else its latency decides. */
  release(latencyMs: number, congested: boolean, nowMs: number): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (congested) {
      this.#decrease(nowMs, 0.7);
      return;
    }
    // The baseline follows the fastest recent answers, drifting up slowly so it can recover.
    this.#baselineMs = this.#baselineMs === undefined ? latencyMs : Math.min(latencyMs, this.#baselineMs * 1.01 + 0.1);
    if (latencyMs > this.#baselineMs * this.#tolerance + this.#slackMs) {
      this.#decrease(nowMs, 0.9);
    } else if (this.#inFlight + 1 >= this.limit) {
      // Only grow when the limit is what holds us back.
      this.#limit = Math.min(this.max, this.#limit + (this.#slowStart ? 1 : 1 / this.#limit));
    }
  }

  #decrease(nowMs: number, factor: number): void {
    this.#slowStart = false;
    if (nowMs - this.#lastDecreaseAt < Math.max(this.#cooldownMs, this.#baselineMs ?? 0)) return;
    this.#lastDecreaseAt = nowMs;
    this.#limit = Math.max(this.min, this.#limit * factor);
  }
}
