import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProviderGate } from './provider-gate.ts';

/** How many sends the gate admits over `seconds` of simulated time, each answered at once. */
function admittedOver(gate: ProviderGate, seconds: number, startMs = 0): number {
  let admitted = 0;
  for (let now = startMs; now < startMs + seconds * 1000; now++) {
    while (gate.admit(now) === 0) {
      admitted++;
      gate.done(now, 1, { congested: false, failed: false });
    }
  }
  return admitted;
}

describe('ProviderGate', () => {
  it('admits at the configured rate (a small burst, then the token rate)', () => {
    const admitted = admittedOver(new ProviderGate({ ratePerSecond: 50, maxConcurrency: 100 }, 0), 10);
    assert.ok(admitted >= 500 && admitted <= 506, `${admitted} sends in 10 s at 50/s`);
  });

  it('a project limit below the default is what the gate enforces', () => {
    const slow = admittedOver(new ProviderGate({ ratePerSecond: 7, maxConcurrency: 100 }, 0), 10);
    assert.ok(slow >= 70 && slow <= 71, `${slow} sends in 10 s at 7/s`);
  });

  it('never has more requests in flight than the concurrency ceiling', () => {
    const gate = new ProviderGate({ ratePerSecond: 1_000_000, maxConcurrency: 5 }, 0);
    let inFlight = 0;
    for (let now = 0; now < 1000; now++) {
      while (gate.admit(now) === 0) inFlight++;
      assert.ok(inFlight <= 5, `${inFlight} in flight`);
      if (inFlight > 0) {
        gate.done(now, 1, { congested: false, failed: false });
        inFlight--;
      }
    }
  });

  it('pauses for Retry-After and says when to try again', () => {
    const gate = new ProviderGate({ ratePerSecond: 1000, maxConcurrency: 10 }, 0);
    assert.equal(gate.admit(0), 0);
    gate.done(10, 5, { congested: true, failed: true, retryAfterMs: 3_000 });
    assert.equal(gate.admit(100), 3_010);
    assert.equal(gate.admit(3_010), 0);
  });

  it('opens its circuit after consecutive failures, then lets one probe through', () => {
    const gate = new ProviderGate({ ratePerSecond: 1000, maxConcurrency: 100 }, 0);
    for (let i = 0; i < 10; i++) {
      assert.equal(gate.admit(i * 10), 0);
      gate.done(i * 10, 5, { congested: true, failed: true });
    }
    const reopen = gate.admit(200);
    assert.ok(reopen > 200, 'closed for a cool-down');
    assert.equal(gate.admit(reopen), 0, 'one probe');
    assert.ok(gate.admit(reopen) > reopen, 'and only one until it answers');
    gate.done(reopen + 5, 5, { congested: false, failed: false });
    assert.equal(gate.admit(reopen + 6), 0, 'a success closes it');
  });
});
