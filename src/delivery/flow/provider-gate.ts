import { TokenBucket } from '../../core/token-bucket.ts';
import type { ProviderLimits } from '../provider.ts';
import { AdaptiveLimit } from './adaptive-limit.ts';
import { CircuitBreaker } from './circuit-breaker.ts';

/**
 * Everything that decides whether one more message may go to one provider for one project now:
 * the rate (token bucket), the adaptive concurrency limit, a pause asked for by Retry-After, and
 * the circuit breaker. `admit` answers now or says when to try again.
 */
export class ProviderGate {
  readonly #bucket: TokenBucket;
  readonly limit: AdaptiveLimit;
  readonly breaker = new CircuitBreaker();
  #pausedUntil = 0;

  constructor(limits: ProviderLimits, nowMs: number) {
    this.#bucket = new TokenBucket(limits.ratePerSecond, Math.max(1, Math.ceil(limits.ratePerSecond / 10)), nowMs);
    this.limit = new AdaptiveLimit(1, limits.maxConcurrency, Math.min(16, limits.maxConcurrency));
  }

  /** `0` when a message may be sent now (a slot and a token are taken), else when to try again. */
  admit(nowMs: number): number {
    if (nowMs < this.#pausedUntil) return this.#pausedUntil;
    const blocked = this.breaker.blockedUntil(nowMs);
    if (blocked > 0) return blocked;
    if (!this.limit.tryAcquire()) return -1; // a slot frees when a send finishes
    const token = this.#bucket.take(nowMs);
    if (!token.ok) {
      this.limit.cancel();
      return nowMs + token.retryAfterMs;
    }
    return 0;
  }

  /** A send finished. `congested` for 429/5xx/timeouts; `retryAfterMs` pauses the whole gate. */
  done(nowMs: number, latencyMs: number, outcome: { congested: boolean; failed: boolean; retryAfterMs?: number | undefined }): void {
    this.limit.release(latencyMs, outcome.congested, nowMs);
    if (outcome.failed) this.breaker.failure(nowMs);
    else this.breaker.success();
    if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > 0) {
      this.#pausedUntil = Math.max(this.#pausedUntil, nowMs + outcome.retryAfterMs);
    }
  }
}
