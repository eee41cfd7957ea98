import assert from 'node:assert/strict';
import { it } from 'node:test';
import { CatalogCache, planBatch, type PlannedRecord } from '../ingest/apply-plan.ts';
import type { IngestRecord } from '../ingest/records.ts';
import { emptyNatives, newProfile, type ProfileState } from '../profiles/profile-model.ts';
import type { BatchEffects, CellStore } from './cell-store.ts';
import { emptyEffects, OffsetConflictError } from './cell-store.ts';
import { runAudienceContract } from './audience.contract.ts';

export interface StoreFixture {
  open(): Promise<CellStore>;
  cleanup(): Promise<void>;
}

const LOG = 'log-a';
const P = 'prj_contract';
const T0 = Date.UTC(2026, 5, 1, 12);

const update = (customId: string, extra: Partial<Extract<IngestRecord, { kind: 'profile.update' }>> = {}): IngestRecord => ({
  kind: 'profile.update',
  project_id: P,
  custom_id: customId,
  received_at: T0,
  ...extra,
});

/** Applies records through the real reducer, as the applier does, moving the offset by their count. */
async function applyRecords(store: CellStore, records: IngestRecord[]) {
  const from = await store.appliedSeq(LOG);
  const planned: PlannedRecord[] = records.map((record, i) => ({ seq: from + i + 1, record }));
  return store.applyBatch(LOG, from, from + records.length, (tx) => planBatch(tx, planned, new CatalogCache()));
}

/**
 * The contract every cell store passes: effects and offset commit together or not at all (I1),
 * dedupe, erasure, reads, quarantine. Each case gets a fresh store.
 */
export function runCellStoreContract(makeFixture: () => Promise<StoreFixture>): void {
  const withStore = async (fn: (store: CellStore, fx: StoreFixture) => Promise<void>) => {
    const fx = await makeFixture();
    const store = await fx.open();
    try {
      await fn(store, fx);
    } finally {
      await store.close();
      await fx.cleanup();
    }
  };

  it('migrates idempotently and starts every log at offset 0', () =>
    withStore(async (store) => {
      const again = await store.migrate();
      assert.deepEqual(again.applied, []);
      assert.ok(again.currentVersion >= 1);
      assert.equal(await store.appliedSeq('never-seen'), 0);
      await store.ping();
      await store.optimize(); // refreshing planner statistics on an empty store is harmless
      await store.ping();
    }));

  it('stores profiles, natives, typed attributes, events, counts and installations and reads them back', () =>
    withStore(async (store) => {
      const stats = await applyRecords(store, [
        update('u1', {
          attributes: {
            natives: { email: 'ada@example.com', emailMarketing: 'subscribed', timezone: 'Europe/Paris', phone: '+33612345678' },
            custom: { plan: 'pro', age: 36, vip: true, tags: ['a'], signup: '2026-01-01' },
          },
          events: [
            { name: 'open', time_ms: T0 - 2000, id: 'e1', attributes: { n: { deep: [1, 2] } } },
            { name: 'open', time_ms: T0 - 1000 },
            { name: 'buy', time_ms: T0 - 500 },
          ],
        }),
        {
          kind: 'installation.upsert',
          project_id: P,
          install_id: 'i-web',
          custom_id: 'u1',
          platform: 'web',
          web_push: { endpoint: 'https://push.example/x', keys: { p256dh: 'k', auth: 'a' } },
          push_enabled: true,
          received_at: T0,
        },
      ]);
      assert.equal(stats.eventsInserted, 3);
      assert.equal(await store.appliedSeq(LOG), 2);
      const detail = await store.getProfile(P, 'u1', { eventsLimit: 10 });
      assert.ok(detail);
      assert.deepEqual(detail.profile.natives, {
        ...emptyNatives(),
        email: 'ada@example.com',
        emailMarketing: 'subscribed',
        timezone: 'Europe/Paris',
        phone: '+33612345678',
      });
      assert.deepEqual(detail.profile.attributes, { plan: 'pro', age: 36, vip: true, tags: ['a'], signup: '2026-01-01' });
      assert.deepEqual(
        detail.events.map((e) => [e.name, e.timeMs, e.clientId]),
        [
          ['buy', T0 - 500, null],
          ['open', T0 - 1000, null],
          ['open', T0 - 2000, 'e1'],
        ],
      );
      assert.deepEqual(detail.events[2]!.attributes, { n: { deep: [1, 2] } });
      assert.deepEqual(
        detail.eventCounts.map((c) => [c.name, c.count, c.firstAt, c.lastAt]),
        [
          ['buy', 1, T0 - 500, T0 - 500],
          ['open', 2, T0 - 2000, T0 - 1000],
        ],
      );
      assert.equal(detail.installations.length, 1);
      const install = detail.installations[0]!;
      assert.equal(install.customId, 'u1');
      assert.equal(install.pushEnabled, true);
      assert.deepEqual(install.webPush, { endpoint: 'https://push.example/x', keys: { p256dh: 'k', auth: 'a' } });
      assert.equal(await store.getProfile(P, 'nobody', { eventsLimit: 10 }), null);
      assert.equal(await store.getProfile('prj_other', 'u1', { eventsLimit: 10 }), null, 'projects are apart (I10)');

      // The catalog: what targeting checks a segment against.
      const catalog = await store.catalog(P);
      const types = new Map(catalog.filter((c) => c.kind === 'attribute').map((c) => [c.name, c.type]));
      assert.deepEqual([types.get('plan'), types.get('age'), types.get('vip'), types.get('tags')], ['string', 'number', 'boolean', 'array']);
      assert.deepEqual(catalog.filter((c) => c.kind === 'event').map((c) => c.name).sort(), ['buy', 'open']);
      assert.deepEqual(await store.catalog('prj_other'), [], 'projects are apart (I10)');
    }));

  it('stores an event once per (profile, client id), within a batch and across batches', () =>
    withStore(async (store) => {
      const first = await applyRecords(store, [
        update('u1', { events: [{ name: 'x', time_ms: T0, id: 'same' }, { name: 'x', time_ms: T0, id: 'same' }] }),
        update('u2', { events: [{ name: 'x', time_ms: T0, id: 'same' }] }),
      ]);
      assert.equal(first.eventsInserted, 2);
      assert.equal(first.eventsDeduplicated, 1);
      const second = await applyRecords(store, [update('u1', { events: [{ name: 'x', time_ms: T0 + 1, id: 'same' }] })]);
      assert.equal(second.eventsInserted, 0);
      const detail = await store.getProfile(P, 'u1', { eventsLimit: 10 });
      assert.deepEqual(
        detail!.eventCounts.map((c) => c.count),
        [1],
      );
    }));

  it('commits nothing, not even the offset, when the plan fails (I1)', () =>
    withStore(async (store) => {
      await applyRecords(store, [update('u1', { attributes: { natives: {}, custom: { v: 1 } } })]);
      await assert.rejects(
        store.applyBatch(LOG, 1, 2, async (tx) => {
          await tx.loadProfiles([{ projectId: P, customId: 'u1' }]);
          throw new Error('plan exploded');
        }),
        /plan exploded/,
      );
      assert.equal(await store.appliedSeq(LOG), 1);
      const bad: BatchEffects = emptyEffects();
      bad.profiles.push({ ...newProfile({ projectId: P, customId: 'u-new' }, T0) });
      bad.events.push({ projectId: P, customId: 'missing', name: 'x', timeMs: T0, clientId: null, attributes: null, receivedAt: T0 });
      await assert.rejects(store.applyBatch(LOG, 1, 2, () => Promise.resolve(bad)));
      assert.equal(await store.appliedSeq(LOG), 1);
      assert.equal(await store.getProfile(P, 'u-new', { eventsLimit: 1 }), null, 'the half-written profile was rolled back');
    }));

  it('refuses a batch whose starting offset is not the stored one', () =>
    withStore(async (store) => {
      await applyRecords(store, [update('u1')]);
      await assert.rejects(
        store.applyBatch(LOG, 0, 1, () => Promise.resolve(emptyEffects())),
        (e: unknown) => e instanceof OffsetConflictError,
      );
      assert.equal(await store.appliedSeq(LOG), 1);
    }));

  it('updates a known profile in place and keeps its events', () =>
    withStore(async (store) => {
      await applyRecords(store, [update('u1', { attributes: { natives: {}, custom: { a: 1, tags: ['x'] } }, events: [{ name: 'e', time_ms: T0 }] })]);
      await applyRecords(store, [
        update('u1', { attributes: { natives: { language: 'fr' }, custom: { a: null, tags: { $add: ['y'] }, b: 'two' } } }),
      ]);
      const detail = await store.getProfile(P, 'u1', { eventsLimit: 10 });
      assert.deepEqual(detail!.profile.attributes, { tags: ['x', 'y'], b: 'two' });
      assert.equal(detail!.profile.natives.language, 'fr');
      assert.equal(detail!.events.length, 1);
    }));

  it('erases a profile with its events, counts and installations, and can recreate it fresh', () =>
    withStore(async (store) => {
      await applyRecords(store, [
        update('u1', { attributes: { natives: {}, custom: { old: true } }, events: [{ name: 'e', time_ms: T0, id: 'c1' }] }),
        { kind: 'installation.upsert', project_id: P, install_id: 'i1', custom_id: 'u1', platform: 'android', push_token: 't', received_at: T0 },
      ]);
      await applyRecords(store, [
        { kind: 'profile.delete', project_id: P, custom_id: 'u1', received_at: T0 },
        update('u1', { events: [{ name: 'e', time_ms: T0, id: 'c1' }] }),
      ]);
      const detail = await store.getProfile(P, 'u1', { eventsLimit: 10 });
      assert.deepEqual(detail!.profile.attributes, {});
      assert.deepEqual(detail!.installations, []);
      assert.equal(detail!.events.length, 1, 'the old event is gone; the same client id is new for the new profile');
      assert.deepEqual(
        detail!.eventCounts.map((c) => c.count),
        [1],
      );
      await applyRecords(store, [{ kind: 'profile.delete', project_id: P, custom_id: 'u1', received_at: T0 }]);
      assert.equal(await store.getProfile(P, 'u1', { eventsLimit: 10 }), null);
    }));

  it('relinks an installation to another existing profile without rewriting either profile', () =>
    withStore(async (store) => {
      await applyRecords(store, [
        update('a'),
        update('b'),
        { kind: 'installation.upsert', project_id: P, install_id: 'i1', custom_id: 'a', platform: 'ios', push_token: 'aa', received_at: T0 },
      ]);
      await applyRecords(store, [
        { kind: 'installation.upsert', project_id: P, install_id: 'i1', custom_id: 'b', platform: 'ios', received_at: T0 + 5 },
      ]);
      await applyRecords(store, [{ kind: 'installation.upsert', project_id: P, install_id: 'i1', platform: 'ios', app_version: '2', received_at: T0 + 9 }]);
      const a = await store.getProfile(P, 'a', { eventsLimit: 1 });
      const b = await store.getProfile(P, 'b', { eventsLimit: 1 });
      assert.deepEqual(a!.installations, []);
      assert.equal(b!.installations.length, 1);
      assert.equal(b!.installations[0]!.pushToken, 'aa', 'an omitted field keeps its value');
      assert.equal(b!.installations[0]!.appVersion, '2');
      assert.equal(b!.installations[0]!.lastSeenAt, T0 + 9);
    }));

  it('loads stored state for the plan, including installations and their profile', () =>
    withStore(async (store) => {
      await applyRecords(store, [
        update('u1', { attributes: { natives: { region: 'FR' }, custom: { x: 1 } } }),
        { kind: 'installation.upsert', project_id: P, install_id: 'i1', custom_id: 'u1', platform: 'ios', received_at: T0 },
      ]);
      let seen: { profile?: ProfileState; installCustomId?: string | null } = {};
      await store.applyBatch(LOG, 2, 2, async (tx) => {
        const profiles = await tx.loadProfiles([{ projectId: P, customId: 'u1' }, { projectId: P, customId: 'ghost' }]);
        const installs = await tx.loadInstallations([{ projectId: P, installId: 'i1' }]);
        assert.equal(profiles.size, 1);
        seen = { profile: [...profiles.values()][0], installCustomId: [...installs.values()][0]?.customId };
        return emptyEffects();
      });
      assert.equal(seen.profile?.natives.region, 'FR');
      assert.deepEqual(seen.profile?.attributes, { x: 1 });
      assert.ok(typeof seen.profile?.id === 'number');
      assert.equal(seen.installCustomId, 'u1');
    }));

  it('pages events newest first with a stable cursor', () =>
    withStore(async (store) => {
      const events = Array.from({ length: 7 }, (_, i) => ({ name: 'e', time_ms: T0 - (i % 3) * 1000, id: `c${i}` }));
      await applyRecords(store, [update('u1', { events })]);
      const ids: string[] = [];
      let before: { timeMs: number; id: number } | undefined;
      for (;;) {
        const page = await store.listEvents(P, 'u1', { limit: 3, before });
        ids.push(...page!.events.map((e) => e.clientId!));
        if (!page!.next) break;
        before = page!.next;
      }
      assert.equal(ids.length, 7);
      assert.equal(new Set(ids).size, 7);
      const all = (await store.listEvents(P, 'u1', { limit: 100 }))!.events;
      const times = all.map((e) => e.timeMs);
      assert.deepEqual(times, [...times].sort((x, y) => y - x));
      assert.equal(await store.listEvents(P, 'ghost', { limit: 3 }), null);
    }));

  it('keeps quarantined records with their reason and lets each be replayed or dropped once (I5)', () =>
    withStore(async (store) => {
      const effects = emptyEffects();
      effects.quarantined.push({ seq: 1, projectId: P, payload: '{"bad":true}', reason: 'unknown kind', attempts: 5 });
      effects.quarantined.push({ seq: 2, projectId: null, payload: 'not json', reason: 'invalid JSON', attempts: 5 });
      await store.applyBatch(LOG, 0, 2, () => Promise.resolve(effects));
      assert.equal(await store.appliedSeq(LOG), 2);
      const items = await store.listQuarantine({ states: ['quarantined'], limit: 10 });
      assert.deepEqual(
        items.map((i) => [i.seq, i.projectId, i.payload, i.reason, i.attempts, i.state, i.logId]),
        [
          [1, P, '{"bad":true}', 'unknown kind', 5, 'quarantined', LOG],
          [2, null, 'not json', 'invalid JSON', 5, 'quarantined', LOG],
        ],
      );
      const [first, second] = items;
      assert.equal(await store.resolveQuarantine(first!.id, 'replayed', T0), true);
      assert.equal(await store.resolveQuarantine(first!.id, 'dropped', T0), false, 'already resolved');
      assert.equal(await store.resolveQuarantine(second!.id, 'dropped', T0), true);
      assert.deepEqual(await store.listQuarantine({ states: ['quarantined'], limit: 10 }), []);
      const resolved = await store.getQuarantine(first!.id);
      assert.equal(resolved?.state, 'replayed');
      assert.equal(resolved?.resolvedAt, T0);
      assert.equal(await store.getQuarantine(999_999), null);
    }));

  it('keeps everything a closed store committed when reopened (I1)', () =>
    withStore(async (store, fx) => {
      await applyRecords(store, [update('durable', { events: [{ name: 'e', time_ms: T0, id: 'x' }] })]);
      const again = await fx.open();
      try {
        assert.equal(await again.appliedSeq(LOG), 1);
        assert.equal((await again.getProfile(P, 'durable', { eventsLimit: 5 }))!.events.length, 1);
      } finally {
        await again.close();
      }
    }));

  runAudienceContract((fn) => withStore((store) => fn(store)), applyRecords);
}
