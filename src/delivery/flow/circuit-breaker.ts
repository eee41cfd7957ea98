/**
 * A circuit breaker per provider endpoint: after `threshold` consecutive failures it opens and
 * sends nothing for a cool-down (doubling up to `maxOpenMs`), then lets one probe through; a
 * success closes it. Messages wait in the outbox meanwhile instead of burning their attempts.
 */
export class CircuitBreaker {
  #failures = 0;
  #openUntil = 0;
  #openMs: number;
  #probing = false;

  constructor(
    private readonly threshold = 10,
    private readonly initialOpenMs = 5_000,
    private readonly maxOpenMs = 300_000,
  ) {
    this.#openMs = initialOpenMs;
  }

  /** When sending may resume (0 when it may now). A half-open breaker admits one probe. */
  blockedUntil(nowMs: number): number {
    if (this.#failures < this.threshold) return 0;
    if (nowMs < this.#openUntil) return this.#openUntil;
    if (this.#probing) return nowMs + 1_000;
    this.#probing = true;
    return 0;
  }

  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#openMs = this.initialOpenMs;
  }

  failure(nowMs: number): void {
    this.#failures++;
    if (this.#failures >= this.threshold) {
      if (this.#probing) this.#openMs = Math.min(this.maxOpenMs, this.#openMs * 2);
      this.#probing = false;
      this.#openUntil = nowMs + this.#openMs;
    }
  }

  get open(): boolean {
    return this.#failures >= this.threshold;
  }
}
