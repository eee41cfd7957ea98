import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { AppendRequest, IngestLog } from './ingest-log.ts';
import { IDEMPOTENCY_TTL_MS } from './ingest-log.ts';

/** Opens the same log again each call (same file or database); `cleanup` removes it. */
export interface LogFixture {
  open(): Promise<IngestLog>;
  cleanup(): Promise<void>;
}

const T0 = Date.UTC(2026, 5, 1);
const req = (...payloads: string[]): AppendRequest => ({ payloads });

/**
 * The contract every ingest log backend passes (I1, I2): dense ordered seqs, one durable
 * transaction per append call, idempotency decided with the append, replay after reopen,
 * pruning that never loses an unapplied record.
 */
export function runIngestLogContract(makeFixture: () => Promise<LogFixture>): void {
  const withLog = async (fn: (log: IngestLog, fx: LogFixture) => Promise<void>) => {
    const fx = await makeFixture();
    const log = await fx.open();
    try {
      await fn(log, fx);
    } finally {
      await log.close();
      await fx.cleanup();
    }
  };

  it('gives dense, increasing seqs in request order and reads them back in order', () =>
    withLog(async (log) => {
      assert.equal(await log.headSeq(), 0);
      const outcomes = await log.append([req('a', 'b'), req('c'), req('d', 'e', 'f')], T0);
      assert.deepEqual(outcomes, [
        { kind: 'appended', firstSeq: 1, lastSeq: 2 },
        { kind: 'appended', firstSeq: 3, lastSeq: 3 },
        { kind: 'appended', firstSeq: 4, lastSeq: 6 },
      ]);
      assert.equal(await log.headSeq(), 6);
      const all = await log.read(0, 100);
      assert.deepEqual(
        all.map((e) => [e.seq, e.payload, e.appendedAt]),
        [1, 2, 3, 4, 5, 6].map((seq, i) => [seq, 'abcdef'[i], T0]),
      );
      assert.deepEqual(
        (await log.read(2, 2)).map((e) => e.seq),
        [3, 4],
      );
      assert.deepEqual(await log.read(6, 10), []);
    }));

  it('keeps every appended record and its id across close and reopen (I1)', () =>
    withLog(async (log, fx) => {
      const id = await log.logId();
      await log.append([req('x'), req('y')], T0);
      await log.close();
      const again = await fx.open();
      try {
        assert.equal(await again.logId(), id);
        assert.equal(await again.headSeq(), 2);
        assert.deepEqual(
          (await again.read(0, 10)).map((e) => e.payload),
          ['x', 'y'],
        );
        const [next] = await again.append([req('z')], T0);
        assert.deepEqual(next, { kind: 'appended', firstSeq: 3, lastSeq: 3 });
      } finally {
        await again.close();
      }
      // withLog closes `log` again; closing twice must be harmless.
    }));

  it('answers a repeated Idempotency-Key with the first result and a different request with a conflict', () =>
    withLog(async (log) => {
      const claim = { projectId: 'p1', key: 'k', requestHash: 'h1', meta: '{"accepted":2}' };
      const [first] = await log.append([{ payloads: ['a', 'b'], idempotency: claim }], T0);
      assert.deepEqual(first, { kind: 'appended', firstSeq: 1, lastSeq: 2 });
      const [repeat, conflict, otherProject] = await log.append(
        [
          { payloads: ['a', 'b'], idempotency: claim },
          { payloads: ['c'], idempotency: { ...claim, requestHash: 'h2' } },
          { payloads: ['d'], idempotency: { ...claim, projectId: 'p2' } },
        ],
        T0 + 1000,
      );
      assert.deepEqual(repeat, { kind: 'replayed', lastSeq: 2, meta: '{"accepted":2}' });
      assert.deepEqual(conflict, { kind: 'conflict' });
      assert.deepEqual(otherProject, { kind: 'appended', firstSeq: 3, lastSeq: 3 });
      assert.equal(await log.headSeq(), 3, 'neither the repeat nor the conflict appended anything');
    }));

  it('settles two uses of one key within a single group commit: the second replays the first', () =>
    withLog(async (log) => {
      const claim = { projectId: 'p1', key: 'same', requestHash: 'h', meta: 'm' };
      const outcomes = await log.append(
        [
          { payloads: ['a'], idempotency: claim },
          { payloads: ['a'], idempotency: claim },
        ],
        T0,
      );
      assert.deepEqual(outcomes, [
        { kind: 'appended', firstSeq: 1, lastSeq: 1 },
        { kind: 'replayed', lastSeq: 1, meta: 'm' },
      ]);
    }));

  it('forgets idempotency keys after 24 hours', () =>
    withLog(async (log) => {
      const claim = { projectId: 'p1', key: 'old', requestHash: 'h', meta: 'm' };
      await log.append([{ payloads: ['a'], idempotency: claim }], T0);
      const [later] = await log.append([{ payloads: ['b'], idempotency: { ...claim, requestHash: 'other' } }], T0 + IDEMPOTENCY_TTL_MS + 1);
      assert.deepEqual(later, { kind: 'appended', firstSeq: 2, lastSeq: 2 });
    }));

  it('prunes only records that are both applied and past retention, and never reuses a seq', () =>
    withLog(async (log) => {
      await log.append([req('old1', 'old2', 'old3')], T0);
      await log.append([req('new1')], T0 + 10_000);
      // Applied up to 2 only: record 3 is old but unapplied and must stay.
      const removed = await log.prune({ appliedSeq: 2, cutoffMs: T0 + 5_000, maxRows: 100, nowMs: T0 + 10_000 });
      assert.equal(removed, 2);
      assert.deepEqual(
        (await log.read(0, 10)).map((e) => e.payload),
        ['old3', 'new1'],
      );
      // Everything applied and old: all gone, yet the head stays and seqs continue.
      await log.prune({ appliedSeq: 4, cutoffMs: T0 + 20_000, maxRows: 100, nowMs: T0 + 20_000 });
      assert.deepEqual(await log.read(0, 10), []);
      assert.equal(await log.headSeq(), 4);
      const [next] = await log.append([req('after')], T0 + 30_000);
      assert.deepEqual(next, { kind: 'appended', firstSeq: 5, lastSeq: 5 });
      const stats = await log.stats();
      assert.deepEqual(stats, { headSeq: 5, oldestSeq: 5, entries: 1 });
    }));

  it('prunes in bounded steps', () =>
    withLog(async (log) => {
      await log.append([req(...Array.from({ length: 25 }, (_, i) => `r${i}`))], T0);
      assert.equal(await log.prune({ appliedSeq: 25, cutoffMs: T0 + 1, maxRows: 10, nowMs: T0 + 1 }), 10);
      assert.equal(await log.prune({ appliedSeq: 25, cutoffMs: T0 + 1, maxRows: 10, nowMs: T0 + 1 }), 10);
      assert.equal(await log.prune({ appliedSeq: 25, cutoffMs: T0 + 1, maxRows: 10, nowMs: T0 + 1 }), 5);
    }));

  it('bounds a read by payload bytes, yet always returns the next entry', () =>
    withLog(async (log) => {
      await log.append([req('a'.repeat(100), 'b'.repeat(100), 'c'.repeat(100), 'd'.repeat(500))], T0);
      assert.deepEqual(
        (await log.read(0, 10, 250)).map((e) => e.seq),
        [1, 2],
      );
      assert.deepEqual(
        (await log.read(2, 10, 250)).map((e) => e.seq),
        [3],
      );
      assert.deepEqual(
        (await log.read(3, 10, 250)).map((e) => e.seq),
        [4],
        'a record larger than the budget still comes, alone',
      );
      assert.equal((await log.read(0, 10)).length, 4);
    }));

  it('answers ping while healthy', () => withLog(async (log) => assert.equal(await log.ping(), undefined)));
}
