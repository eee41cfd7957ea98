/** A token bucket: `ratePerSecond` tokens refill continuously up to `burst`. Pure maths over a clock value. */
export class TokenBucket {
  #tokens: number;
  #updatedMs: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    nowMs: number,
  ) {
    this.#tokens = burst;
    this.#updatedMs = nowMs;
  }

  /** Takes one token if available; otherwise returns how many ms until one is. */
  take(nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    const elapsed = Math.max(0, nowMs - this.#updatedMs);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
    this.#updatedMs = nowMs;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - this.#tokens) * 1000) / this.ratePerSecond) };
  }
}
