import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { silentLogger } from '../core/logger.ts';
import type { CellStore } from '../storage/cell-store.ts';
import { SqliteCellStore } from '../storage/sqlite/sqlite-cell-store.ts';
import { SqliteIngestLog } from '../storage/sqlite/sqlite-ingest-log.ts';
import { tempDir } from '../../test/support/temp.ts';
import { Applier, MAX_BATCH_WEIGHT, RecordFailedError, StoreUnavailableError, withinWeight } from './applier.ts';
import { encodeRecord, type IngestRecord } from './records.ts';

const P = 'prj_applier';
const T0 = Date.UTC(2026, 5, 1);
const event = (customId: string, id: string): string =>
  encodeRecord({ kind: 'profile.update', project_id: P, custom_id: customId, events: [{ name: 'e', time_ms: T0, id }], received_at: T0 } satisfies IngestRecord);

/** A real store that can be made to fail like a broken disk, for fault injection. */
function breakable(store: CellStore): CellStore & { broken: boolean } {
  const fault = () => Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
  const wrapped = Object.create(store) as CellStore & { broken: boolean };
  wrapped.broken = false;
  for (const method of ['applyBatch', 'appliedSeq', 'ping'] as const) {
    const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
    (wrapped as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
      wrapped.broken ? Promise.reject(fault()) : original(...args);
  }
  return wrapped;
}

describe('batch weight', () => {
  const send = (n: number, seq: number) => ({
    seq,
    record: {
      kind: 'send.request',
      project_id: P,
      send_id: `snd_${seq}`,
      channel: 'push',
      category: 'transactional',
      priority: 'normal',
      recipients: { custom_ids: Array.from({ length: n }, (_, i) => `u${i}`) },
      variants: { default: { title: 't', body: 'b' } },
      received_at: T0,
    } satisfies IngestRecord,
  });
  const update = (seq: number) => ({ seq, record: { kind: 'profile.update', project_id: P, custom_id: 'u', received_at: T0 } satisfies IngestRecord });

  it('ends a batch after the send that reaches the row budget, so one transaction stays bounded', () => {
    const big = Math.ceil(MAX_BATCH_WEIGHT / 2);
    const planned = [update(1), send(big, 2), send(big, 3), update(4)];
    assert.deepEqual(withinWeight(planned).map((p) => p.seq), [1, 2]);
  });

  it('always keeps the first record, however large, and leaves small batches whole', () => {
    assert.deepEqual(withinWeight([send(MAX_BATCH_WEIGHT * 3, 7), update(8)]).map((p) => p.seq), [7]);
    const small = Array.from({ length: 5_000 }, (_, i) => update(i + 1));
    assert.equal(withinWeight(small).length, 5_000);
  });
});

describe('applier', () => {
  let tmp: ReturnType<typeof tempDir>;
  let n = 0;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp.remove());

  async function fresh(batchSize = 100) {
    n++;
    const log = await SqliteIngestLog.open(path.join(tmp.dir, `log-${n}.db`));
    const store = await SqliteCellStore.open(path.join(tmp.dir, `store-${n}.db`));
    const make = (s: CellStore = store) =>
      new Applier({ log, store: s, clock: new ManualClock(T0), logger: silentLogger, maxAttempts: 5, batchSize });
    return { log, store, make };
  }

  async function drain(applier: Applier): Promise<void> {
    for (;;) {
      try {
        if ((await applier.step()).consumed === 0) return;
      } catch (error) {
        if (!(error instanceof RecordFailedError)) throw error;
      }
    }
  }

  it('applies the log in batches and a new applier resumes exactly where the store says (I1)', async () => {
    const { log, store, make } = await fresh(7);
    await log.append([{ payloads: Array.from({ length: 20 }, (_, i) => event(`u${i % 3}`, `e${i}`)) }], T0);
    const first = make();
    await first.init();
    const step = await first.step();
    assert.equal(step.consumed, 7);
    assert.equal(await store.appliedSeq(await log.logId()), 7);
    // A crash here: a new applier must continue from 7, not re-apply.
    const second = make();
    await second.init();
    assert.equal(second.appliedSeq, 7);
    await drain(second);
    assert.equal(second.appliedSeq, 20);
    let total = 0;
    for (const u of ['u0', 'u1', 'u2']) total += (await store.getProfile(P, u, { eventsLimit: 100 }))!.events.length;
    assert.equal(total, 20);
  });

  it('retries a bad record a bounded number of times, quarantines it, and keeps the rest flowing (I5)', async () => {
    const { log, store, make } = await fresh(50);
    await log.append([{ payloads: [event('a', '1'), '{"kind":"from.the.future","project_id":"p","received_at":1}', event('a', '2')] }], T0);
    const applier = make();
    await applier.init();
    const failures: number[] = [];
    for (let i = 0; i < 20 && applier.appliedSeq < 3; i++) {
      try {
        await applier.step();
      } catch (error) {
        assert.ok(error instanceof RecordFailedError);
        assert.equal(error.seq, 2);
        failures.push(error.attempt);
      }
    }
    assert.deepEqual(failures, [1, 2, 3, 4], 'four retries, then the fifth failure quarantines');
    assert.equal(applier.appliedSeq, 3);
    const profile = await store.getProfile(P, 'a', { eventsLimit: 10 });
    assert.deepEqual(profile!.events.map((e) => e.clientId).sort(), ['1', '2']);
    const [item] = await store.listQuarantine({ states: ['quarantined'], limit: 10 });
    assert.equal(item!.seq, 2);
    assert.equal(item!.attempts, 5);
    assert.equal(item!.projectId, 'p');
    assert.match(item!.reason, /unknown record kind/);
  });

  it('never blames records for a store outage and resumes by itself when the store is back (I6)', async () => {
    const { log, store, make } = await fresh(50);
    const flaky = breakable(store);
    await log.append([{ payloads: [event('b', '1'), event('b', '2')] }], T0);
    const applier = make(flaky);
    await applier.init();
    flaky.broken = true;
    for (let i = 0; i < 10; i++) await assert.rejects(applier.step(), (e: unknown) => e instanceof StoreUnavailableError);
    flaky.broken = false;
    await drain(applier);
    assert.equal(applier.appliedSeq, 2);
    assert.deepEqual(await store.listQuarantine({ states: ['quarantined'], limit: 10 }), [], 'nothing was quarantined');
    assert.equal((await store.getProfile(P, 'b', { eventsLimit: 10 }))!.events.length, 2);
  });

  it('lets two appliers race on one log without applying anything twice', async () => {
    const { log, store, make } = await fresh(5);
    await log.append([{ payloads: Array.from({ length: 30 }, (_, i) => event('c', `e${i}`)) }], T0);
    const a = make();
    const b = make();
    await a.init();
    await b.init();
    for (let i = 0; i < 40; i++) {
      await Promise.all([a.step(), b.step()]);
    }
    assert.equal(await store.appliedSeq(await log.logId()), 30);
    const profile = await store.getProfile(P, 'c', { eventsLimit: 100 });
    assert.equal(profile!.events.length, 30);
    assert.deepEqual(
      profile!.eventCounts.map((c) => c.count),
      [30],
    );
  });
});
