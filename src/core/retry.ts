/** Retry intent as data: exponential backoff with full jitter, capped. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ initialMs: 50, maxMs: 5_000, multiplier: 2 });

/** Delay before attempt `attempt` (1-based); `random` is injectable so tests are deterministic. */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
