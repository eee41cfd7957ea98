import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../core/logger.ts';
import type { MessageUpdate } from '../storage/outbox-port.ts';
import { OutcomeWriter } from './outcome-writer.ts';

const update = (id: string): MessageUpdate => ({
  id,
  owner: 'o',
  claimedAttempt: 1,
  target: { projectId: 'p', channel: 'push', customId: null, installId: null, recipient: 'r' },
  state: 'sent',
  reason: null,
  errorCode: null,
  at: 0,
});

/** A store that records each transaction's ids and can be made to fail. */
function fakeStore() {
  const transactions: string[][] = [];
  const state = { failing: false };
  return {
    transactions,
    state,
    async settleMessages(updates: readonly MessageUpdate[]) {
      await sleep(1);
      if (state.failing) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      transactions.push(updates.map((u) => u.id));
      return { applied: updates.length, lostLeases: 0 };
    },
  };
}

describe('OutcomeWriter', () => {
  it('shares transactions: a full batch at once, the rest after the delay, each outcome once', async () => {
    const store = fakeStore();
    const written: string[] = [];
    const w = new OutcomeWriter({ store, logger: silentLogger, batch: 10, delayMs: 20, onWritten: (ids) => written.push(...ids) });
    for (let i = 0; i < 25; i++) w.add(update(`m${i}`));
    await w.drain();
    assert.ok(store.transactions.length <= 4, `${store.transactions.length} transactions for 25 outcomes`);
    assert.ok(store.transactions.every((t) => t.length <= 10));
    assert.deepEqual(written.sort(), Array.from({ length: 25 }, (_, i) => `m${i}`).sort());
    assert.equal(w.pending, 0);
  });

  it('a lone outcome waits for company no longer than the delay', async () => {
    const store = fakeStore();
    const w = new OutcomeWriter({ store, logger: silentLogger, batch: 500, delayMs: 10, onWritten: () => undefined });
    w.add(update('only'));
    assert.equal(store.transactions.length, 0, 'not written at once');
    for (let i = 0; i < 100 && store.transactions.length === 0; i++) await sleep(5);
    assert.deepEqual(store.transactions, [['only']]);
  });

  it('loses nothing while the store fails: the outcomes are written once it is back', async () => {
    const store = fakeStore();
    const written: string[] = [];
    const w = new OutcomeWriter({ store, logger: silentLogger, batch: 5, delayMs: 5, onWritten: (ids) => written.push(...ids) });
    store.state.failing = true;
    for (let i = 0; i < 12; i++) w.add(update(`m${i}`));
    await sleep(150);
    assert.equal(written.length, 0);
    assert.equal(w.pending, 12, 'every outcome is still waiting');
    store.state.failing = false;
    for (let i = 0; i < 200 && written.length < 12; i++) await sleep(10);
    assert.deepEqual(written.sort(), Array.from({ length: 12 }, (_, i) => `m${i}`).sort());
    assert.equal(new Set(store.transactions.flat()).size, store.transactions.flat().length, 'each written once');
  });
});

describe('OutcomeWriter.retarget', () => {
  it('a waiting outcome follows a new claim of its message, so it is written instead of refused as a lost lease (I4)', async () => {
    // A store that, like the outbox, applies an outcome only for the message's latest claim.
    const attempts = new Map([['m1', 1], ['m2', 1]]);
    const settled: string[] = [];
    const store = {
      async settleMessages(updates: readonly MessageUpdate[]) {
        await sleep(1);
        const ok = updates.filter((u) => attempts.get(u.id) === u.claimedAttempt);
        settled.push(...ok.map((u) => u.id));
        return { applied: ok.length, lostLeases: updates.length - ok.length };
      },
    };
    const w = new OutcomeWriter({ store, logger: silentLogger, batch: 10, delayMs: 30, onWritten: () => undefined });
    w.add(update('m1'));
    w.add(update('m2'));
    // Both leases lapse while the outcomes wait; the same dispatcher claims both again (attempt 2),
    // but only m1's new claim reaches the writer before the batch is written.
    attempts.set('m1', 2);
    attempts.set('m2', 2);
    w.retarget('m1', 2);
    await w.drain();
    assert.deepEqual(settled, ['m1'], 'm1 is settled under its new claim; m2 (not retargeted) is refused, as before');
  });
});

describe('OutcomeWriter.retarget during a write', () => {
  it('an outcome refused under its old claim while being written is written again under the new one', async () => {
    const attempts = new Map([['m1', 1]]);
    const settled: string[] = [];
    const written: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const store = {
      async settleMessages(updates: readonly MessageUpdate[]) {
        await gate;
        const ok = updates.filter((u) => attempts.get(u.id) === u.claimedAttempt);
        settled.push(...ok.map((u) => `${u.id}@${u.claimedAttempt}`));
        return { applied: ok.length, lostLeases: updates.length - ok.length };
      },
    };
    const w = new OutcomeWriter({ store, logger: silentLogger, batch: 1, delayMs: 1, onWritten: (ids) => written.push(...ids) });
    w.add(update('m1')); // a full batch: written at once, and held at the gate
    await sleep(5);
    attempts.set('m1', 2); // the lease lapsed and the message was claimed again meanwhile
    w.retarget('m1', 2);
    release();
    await w.drain();
    assert.deepEqual(settled, ['m1@2'], 'refused under claim 1, then written under claim 2');
    assert.deepEqual(written, ['m1'], 'reported written once, when it was');
  });
});
