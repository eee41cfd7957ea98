import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveLimit } from './adaptive-limit.ts';

/** Keeps the limit saturated: acquires every free slot, then answers one request with `latencyMs`. */
function round(limit: AdaptiveLimit, latencyMs: number, congested: boolean, nowMs: number): void {
  while (limit.tryAcquire());
  limit.release(latencyMs, congested, nowMs);
}

describe('AdaptiveLimit', () => {
  it('never admits more than the limit', () => {
    const limit = new AdaptiveLimit(1, 100, 4);
    let admitted = 0;
    while (limit.tryAcquire()) admitted++;
    assert.equal(admitted, 4);
    assert.equal(limit.inFlight, 4);
    limit.cancel();
    assert.equal(limit.inFlight, 3);
    assert.ok(limit.tryAcquire());
    assert.equal(limit.tryAcquire(), false);
  });

  it('grows quickly while answers are fast and clean, up to its maximum', () => {
    const limit = new AdaptiveLimit(1, 1000, 16);
    for (let i = 0; i < 2000; i++) round(limit, 5, false, i);
    assert.equal(limit.limit, 1000);
  });

  it('does not grow when the limit is not what holds sends back', () => {
    const limit = new AdaptiveLimit(1, 1000, 16);
    for (let i = 0; i < 500; i++) {
      assert.ok(limit.tryAcquire());
      limit.release(5, false, i); // one in flight at a time
    }
    assert.equal(limit.limit, 16);
  });

  it('shrinks on congestion, at most once per cool-down, and never below its minimum', () => {
    const limit = new AdaptiveLimit(2, 1000, 100, { cooldownMs: 100 });
    round(limit, 5, true, 1_000);
    assert.equal(limit.limit, 70);
    // A burst of 429s inside the cool-down is one signal.
    for (let i = 0; i < 50; i++) round(limit, 5, true, 1_001 + i);
    assert.equal(limit.limit, 70);
    for (let t = 2_000; t < 200_000; t += 200) round(limit, 5, true, t);
    assert.equal(limit.limit, 2);
  });

  it('after congestion grows by about one per round trip, not by doubling', () => {
    const limit = new AdaptiveLimit(1, 1000, 100);
    round(limit, 5, true, 0); // 70
    for (let i = 0; i < 70; i++) round(limit, 5, false, 1_000 + i);
    assert.ok(limit.limit >= 70 && limit.limit <= 72, `limit ${limit.limit}`);
  });

  it('treats latency far above the baseline as congestion, and ordinary queueing as none', () => {
    const limit = new AdaptiveLimit(1, 1000, 100, { tolerance: 2, slackMs: 100, cooldownMs: 100 });
    for (let i = 0; i < 10; i++) round(limit, 10, false, i); // baseline ≈ 10 ms
    const before = limit.limit;
    round(limit, 80, false, 100); // queueing within 2 × 10 + 100 ms: fine
    assert.ok(limit.limit >= before);
    round(limit, 500, false, 1_000); // a provider slowing down
    assert.ok(limit.limit < before, `${limit.limit} < ${before}`);
  });
});
