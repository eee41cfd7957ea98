/**
 * Campaign fan-out against real stores (SQLite, and PostgreSQL when HERALD_TEST_PG_URL is set),
 * with a clock the test moves: exactly-once materialisation (I4), variants and the control group as
 * the reference function assigns them, local-time waves across a daylight-saving change, frequency
 * caps, quiet hours, pause/resume/cancel, and counts that reconcile.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/core/clock.ts';
import { messageIdFor } from '../src/delivery/message-id.ts';
import { CatalogCache, planBatch, type PlannedRecord } from '../src/ingest/apply-plan.ts';
import type { IngestRecord } from '../src/ingest/records.ts';
import { assignVariant, type CampaignDefinition, type CampaignRecord, type RecurringDefinition } from '../src/orchestration/campaign-model.ts';
import { CampaignActions, CampaignRunner } from '../src/orchestration/campaign-runner.ts';
import type { MessagingSettings } from '../src/orchestration/messaging-settings.ts';
import type { CellStore } from '../src/storage/cell-store.ts';
import { PAUSE_SHIFT_MS } from '../src/storage/sql-campaigns.ts';
import { PgCellStore } from '../src/storage/postgres/pg-cell-store.ts';
import { SqliteCellStore } from '../src/storage/sqlite/sqlite-cell-store.ts';
import { createTestDatabase, skipWithoutPg, type TestDatabase } from './support/services.ts';
import { tempDir } from './support/temp.ts';

const silent = { info() {}, warn() {}, error() {}, debug() {}, child() { return silent; } } as never;
const ZONES = ['America/New_York', 'Europe/Paris', 'Asia/Tokyo', null, 'Not/AZone'] as const;

interface Seeded {
  customId: string;
  zone: string | null;
  /** 0: none; 1: one iOS device; 2: iOS and Android. */
  devices: number;
  pushEnabled: boolean;
}

function population(n: number): Seeded[] {
  return Array.from({ length: n }, (_, i) => ({
    customId: `u${String(i).padStart(4, '0')}`,
    zone: ZONES[i % ZONES.length] ?? null,
    devices: i % 7 === 0 ? 0 : i % 5 === 0 ? 2 : 1,
    pushEnabled: i % 11 !== 0,
  }));
}

async function seed(store: CellStore, projectId: string, people: Seeded[], nowMs: number): Promise<void> {
  const records: IngestRecord[] = [];
  for (const p of people) {
    records.push({
      kind: 'profile.update',
      project_id: projectId,
      custom_id: p.customId,
      received_at: nowMs,
      attributes: { natives: p.zone ? { timezone: p.zone } : {}, custom: { n: Number(p.customId.slice(1)) } },
      events: [],
    });
    for (let d = 0; d < p.devices; d++) {
      records.push({
        kind: 'installation.upsert',
        project_id: projectId,
        install_id: `${p.customId}-d${d}`,
        custom_id: p.customId,
        platform: d === 0 ? 'ios' : 'android',
        push_token: `tok-${p.customId}-${d}`,
        push_enabled: p.pushEnabled,
        received_at: nowMs,
      });
    }
  }
  const from = await store.appliedSeq('log-test');
  const planned: PlannedRecord[] = records.map((record, i) => ({ seq: from + i + 1, record }));
  await store.applyBatch('log-test', from, from + records.length, (tx) => planBatch(tx, planned, new CatalogCache()));
}

function definition(over: Partial<CampaignDefinition> = {}): CampaignDefinition {
  return {
    name: 'c',
    channel: 'push',
    category: 'marketing',
    target: { segment: null, audiences: [] },
    platforms: null,
    sendTime: { type: 'now' },
    ratePerMinute: null,
    variants: [{ name: 'A', weight: 100, templateId: null, content: { default: { title: 'Hi {{ profile.custom_id }}', body: 'b' } } }],
    controlPercent: 0,
    expiresAfterMs: null,
    lateStart: { afterMs: 3_600_000, action: 'send' },
    quietHours: 'defer',
    priority: 'high',
    ...over,
  };
}

const lookups = {
  template: () => Promise.resolve(null),
  savedSegments: () => Promise.resolve(new Map()),
  audienceIds: () => Promise.resolve(new Map()),
};

async function schedule(store: CellStore, projectId: string, id: string, def: CampaignDefinition, at: number): Promise<CampaignRecord> {
  const c: CampaignRecord = { id, projectId, kind: 'campaign', name: id, status: 'scheduled', definition: { ...def, name: id }, version: 1, nextRunAt: at, createdAt: at, updatedAt: at };
  assert.equal(await store.campaigns.create(c, 'created by the test'), true);
  return c;
}

type Row = { custom_id: string; install_id: string | null; state: string; error_code: string | null; variant: string | null; id: string; idempotency_key: string; next_attempt_at: number; send_id: string };

async function messagesOf(store: CellStore, campaignId: string): Promise<Row[]> {
  const rows = await store.campaigns.executor.query<Row>('SELECT * FROM messages WHERE campaign_id = ? ORDER BY idempotency_key', [campaignId]);
  return rows.map((r) => ({ ...r, next_attempt_at: Number(r.next_attempt_at) }));
}

/** Leaves only this campaign's messages due, so claims in a test see nothing else. */
async function isolate(store: CellStore, campaignId: string): Promise<void> {
  await store.campaigns.executor.run("UPDATE messages SET state = 'cancelled' WHERE state = 'queued' AND campaign_id <> ?", [campaignId]);
}

async function runUntilIdle(runner: CampaignRunner, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) if (!(await runner.tick())) return;
}

function suite(name: string, open: () => Promise<{ store: CellStore; close(): Promise<void> }>, skip: string | false): void {
  describe(`campaign fan-out (${name})`, { skip }, () => {
    let store: CellStore;
    let close: () => Promise<void>;
    const clock = new ManualClock(Date.UTC(2026, 2, 7, 0, 0));
    let queued = 0;
    let runner: CampaignRunner;
    before(async () => {
      const opened = await open();
      store = opened.store;
      close = () => opened.close();
      runner = new CampaignRunner({ store, lookups, clock, logger: silent, onQueued: () => queued++ });
    });
    after(async () => close());

    it('materialises each recipient once, with variants and the control group as assignVariant says (I4)', async () => {
      const people = population(400);
      await seed(store, 'p_ab', people, clock.now());
      const def = definition({
        variants: [
          { name: 'A', weight: 30, templateId: null, content: { default: { title: 'A' } } },
          { name: 'B', weight: 70, templateId: null, content: { default: { title: 'B' }, fr: { title: 'B fr' } } },
        ],
        controlPercent: 10,
        target: { segment: { attribute: 'n', op: 'gte', value: 0 }, audiences: [] },
      });
      await schedule(store, 'p_ab', 'cmp_ab', def, clock.now());
      await runUntilIdle(runner);
      const rows = await messagesOf(store, 'cmp_ab');
      const expected = people.flatMap((p) => (p.devices === 0 || !p.pushEnabled ? [`profile:${p.customId}`] : Array.from({ length: p.devices }, (_, d) => `install:${p.customId}-d${d}`)));
      assert.equal(rows.length, expected.length);
      assert.ok(queued > 0);
      for (const r of rows) {
        assert.equal(r.id, messageIdFor(r.idempotency_key), 'SQL and JS derive the same message id');
        const person = people.find((p) => p.customId === r.custom_id)!;
        const arm = assignVariant('p_ab', 'cmp_ab', r.custom_id, def.variants, 10);
        assert.equal(r.variant, arm, `variant of ${r.custom_id}`);
        const reachable = person.devices > 0 && person.pushEnabled;
        if (!reachable) assert.deepEqual([r.state, r.error_code], ['suppressed', 'NO_PUSH_INSTALLATION']);
        else if (arm === 'control') assert.deepEqual([r.state, r.error_code], ['cancelled', 'CONTROL_GROUP']);
        else assert.equal(r.state, 'queued');
      }
      const run = (await store.campaigns.runs('cmp_ab'))[0]!;
      assert.equal(run.status, 'sending');
      assert.equal(run.targeted, rows.length, 'targeted = rows written');

      // A replay of the whole fan-out (as after a restore) writes nothing new.
      await store.campaigns.executor.run("UPDATE campaign_runs SET status = 'materializing', cursor = ? WHERE id = ?", [
        JSON.stringify({ after: 0, end: null, wave: null, done: [], count: 0 }),
        run.id,
      ]);
      await runUntilIdle(runner);
      assert.equal((await messagesOf(store, 'cmp_ab')).length, rows.length);
      assert.equal((await store.campaigns.run(run.id))!.targeted, rows.length);
    });

    it('sends local-time waves at 09:00 in each zone, across the New York DST change', async () => {
      clock.set(Date.UTC(2026, 2, 7, 0, 0));
      await store.campaigns.putSettings('p_local', { timezone: 'America/New_York', caps: [], quietHours: null }, clock.now());
      const people = population(50);
      await seed(store, 'p_local', people, clock.now());
      await schedule(store, 'p_local', 'cmp_local', definition({ sendTime: { type: 'local', date: '2026-03-08', time: '09:00' } }), Date.UTC(2026, 2, 7, 19, 0));
      const count = async () => (await messagesOf(store, 'cmp_local')).length;
      clock.set(Date.UTC(2026, 2, 7, 19, 0)); // launch (09:00 in UTC+14)
      await runUntilIdle(runner);
      assert.equal(await count(), 0, 'no wave before its time');
      clock.set(Date.UTC(2026, 2, 7, 23, 59, 50)); // Tokyo's 09:00 is 00:00Z
      await runUntilIdle(runner);
      const tokyo = (await messagesOf(store, 'cmp_local')).filter((r) => r.state === 'queued');
      assert.ok(tokyo.length > 0);
      assert.ok(tokyo.every((r) => r.next_attempt_at === Date.UTC(2026, 2, 8, 0, 0)));
      clock.set(Date.UTC(2026, 2, 8, 7, 59, 45)); // Paris 09:00 CET = 08:00Z
      await runUntilIdle(runner);
      clock.set(Date.UTC(2026, 2, 8, 12, 59, 45)); // New York 09:00 EDT (after the change that night) = 13:00Z
      await runUntilIdle(runner);
      const rows = await messagesOf(store, 'cmp_local');
      const dueOf = (zone: string | null) =>
        new Set(rows.filter((r) => r.state === 'queued' && people.find((p) => p.customId === r.custom_id)!.zone === zone).map((r) => r.next_attempt_at));
      assert.deepEqual(dueOf('Asia/Tokyo'), new Set([Date.UTC(2026, 2, 8, 0, 0)]));
      assert.deepEqual(dueOf('Europe/Paris'), new Set([Date.UTC(2026, 2, 8, 8, 0)]));
      assert.deepEqual(dueOf('America/New_York'), new Set([Date.UTC(2026, 2, 8, 13, 0)]), 'EDT, not EST');
      assert.deepEqual(dueOf(null), new Set([Date.UTC(2026, 2, 8, 13, 0)]), "no zone: the project's");
      assert.deepEqual(dueOf('Not/AZone'), new Set([Date.UTC(2026, 2, 8, 13, 0)]), "unknown zone: the project's");
      const expected = people.reduce((n, p) => n + (p.pushEnabled ? p.devices : 0), 0);
      assert.equal(rows.length, expected, 'every recipient exactly once across the waves');
      assert.equal((await store.campaigns.runs('cmp_local'))[0]!.status, 'materializing', 'waits for the last zone on Earth');
      clock.set(Date.UTC(2026, 2, 9, 12, 0));
      await runUntilIdle(runner);
      assert.equal((await store.campaigns.runs('cmp_local'))[0]!.status, 'sending');
    });

    it('caps marketing per user and channel, defers or drops in quiet hours; transactional bypasses both', async () => {
      clock.set(Date.UTC(2026, 5, 1, 21, 30)); // 23:30 in Paris (quiet), 17:30 in New York
      const settings: MessagingSettings = { timezone: 'UTC', caps: [{ channel: 'push', max: 1, windowMs: 86_400_000 }], quietHours: { start: '22:00', end: '08:00' } };
      await store.campaigns.putSettings('p_fat', settings, clock.now());
      const people = population(60).map((p) => ({ ...p, devices: 1, pushEnabled: true, zone: Number(p.customId.slice(1)) % 2 ? 'Europe/Paris' : 'America/New_York' }));
      await seed(store, 'p_fat', people, clock.now());
      await schedule(store, 'p_fat', 'cmp_fat1', definition(), clock.now());
      await runUntilIdle(runner);
      const first = await messagesOf(store, 'cmp_fat1');
      const paris = first.filter((r) => people.find((p) => p.customId === r.custom_id)!.zone === 'Europe/Paris');
      assert.ok(paris.every((r) => r.state === 'queued' && r.next_attempt_at === Date.UTC(2026, 5, 2, 6, 0)), 'deferred to 08:00 Paris');
      const ny = first.filter((r) => people.find((p) => p.customId === r.custom_id)!.zone === 'America/New_York');
      assert.ok(ny.every((r) => r.state === 'queued' && r.next_attempt_at === clock.now()));

      clock.advance(60_000);
      await schedule(store, 'p_fat', 'cmp_fat2', definition({ quietHours: 'ignore' }), clock.now());
      await runUntilIdle(runner);
      const second = await messagesOf(store, 'cmp_fat2');
      assert.equal(second.length, 60);
      assert.ok(second.every((r) => r.state === 'capped' && r.error_code === 'FREQUENCY_CAP'), 'one marketing push a day: the second campaign is capped');

      await schedule(store, 'p_fat', 'cmp_fat3', definition({ category: 'transactional' }), clock.now());
      await runUntilIdle(runner);
      const third = await messagesOf(store, 'cmp_fat3');
      assert.ok(third.every((r) => r.state === 'queued' && r.next_attempt_at === clock.now()), 'transactional: no cap, no quiet hours');

      // A new project, quiet hours that drop: Paris dropped with its reason.
      await store.campaigns.putSettings('p_drop', { ...settings, caps: [] }, clock.now());
      await seed(store, 'p_drop', people.slice(0, 10), clock.now());
      await schedule(store, 'p_drop', 'cmp_drop', definition({ quietHours: 'drop' }), clock.now());
      await runUntilIdle(runner);
      const dropped = await messagesOf(store, 'cmp_drop');
      for (const r of dropped) {
        const zone = people.find((p) => p.customId === r.custom_id)!.zone;
        assert.deepEqual([r.state, r.error_code], zone === 'Europe/Paris' ? ['cancelled', 'QUIET_HOURS'] : ['queued', null]);
      }
    });

    it('paces at the send rate, holds on pause, shifts on resume, cancels what is left, and completes', async () => {
      clock.set(Date.UTC(2026, 6, 1, 12, 0));
      const people = population(30).map((p) => ({ ...p, devices: 1, pushEnabled: true }));
      await seed(store, 'p_pace', people, clock.now());
      const c = await schedule(store, 'p_pace', 'cmp_pace', definition({ ratePerMinute: 10 }), clock.now());
      await runUntilIdle(runner);
      const rows = await messagesOf(store, 'cmp_pace');
      const dues = rows.map((r) => r.next_attempt_at).sort((a, b) => a - b);
      assert.equal(dues[0], clock.now());
      assert.equal(dues[29], clock.now() + 29 * 6_000, '10 a minute: one every 6 s');

      await isolate(store, c.id);
      const running = (await store.campaigns.byId(c.id))!;
      assert.equal(running.status, 'running');
      assert.equal(await CampaignActions.pause(store.campaigns, running, clock.now()), true);
      assert.ok((await messagesOf(store, 'cmp_pace')).every((r) => r.next_attempt_at >= PAUSE_SHIFT_MS), 'held while paused');
      assert.equal((await store.claimMessages('t', clock.now() + 3_600_000, 1000, 100)).length, 0, 'nothing of a paused campaign is due');
      clock.advance(600_000);
      const paused = (await store.campaigns.byId(c.id))!;
      assert.equal(await CampaignActions.resume(store.campaigns, paused, clock.now()), true);
      const resumed = (await messagesOf(store, 'cmp_pace')).map((r) => r.next_attempt_at).sort((a, b) => a - b);
      assert.deepEqual(resumed, dues.map((d) => d + 600_000), 'the schedule moves by the length of the pause');
      await runUntilIdle(runner);

      // Deliver the first ten, then cancel: the rest are cancelled with a reason; counts add up.
      const claimed = await store.claimMessages('t', clock.now() + 60_000, 60_000, 10);
      await store.settleMessages(
        claimed.map((m) => ({ id: m.id, owner: 't', state: 'sent', reason: null, errorCode: null, at: clock.now(), claimedAttempt: m.attempts, target: { projectId: m.projectId, channel: m.channel, customId: m.customId, installId: m.installId, recipient: m.recipient } })),
      );
      const live = (await store.campaigns.byId(c.id))!;
      assert.equal(await CampaignActions.cancel(store.campaigns, live, clock.now()), true);
      const counts = await store.campaigns.counts(c.id);
      const by = (state: string) => counts.filter((r) => r.state === state).reduce((n, r) => n + r.count, 0);
      assert.equal(by('sent'), claimed.length);
      assert.equal(by('cancelled'), 30 - claimed.length);
      assert.equal(by('queued'), 0);
      const history = (await store.campaigns.history(c.id)).map((h) => h.kind);
      assert.deepEqual(history, ['created', 'launched', 'materialized', 'paused', 'resumed', 'cancelled']);
    });

    it('completes when every message is settled', async () => {
      clock.set(Date.UTC(2026, 7, 1, 12, 0));
      await seed(store, 'p_done', population(12).map((p) => ({ ...p, devices: 1, pushEnabled: true })), clock.now());
      const c = await schedule(store, 'p_done', 'cmp_done', definition(), clock.now());
      await runUntilIdle(runner);
      await isolate(store, c.id);
      const claimed = await store.claimMessages('t', clock.now(), 60_000, 100);
      assert.equal(claimed.length, 12);
      await store.settleMessages(
        claimed.map((m) => ({ id: m.id, owner: 't', state: 'sent', reason: null, errorCode: null, at: clock.now(), claimedAttempt: m.attempts, target: { projectId: m.projectId, channel: m.channel, customId: m.customId, installId: m.installId, recipient: m.recipient } })),
      );
      await runUntilIdle(runner);
      assert.equal((await store.campaigns.byId(c.id))!.status, 'completed');
      assert.deepEqual((await store.campaigns.history(c.id)).map((h) => h.kind), ['created', 'launched', 'materialized', 'completed']);
    });

    it('recurring: a run per occurrence with its own counts, targeting re-evaluated, a per-user cooldown, missed occurrences skipped', async () => {
      clock.set(Date.UTC(2026, 9, 5, 8, 0));
      await store.campaigns.putSettings('p_rec', { timezone: 'Europe/Paris', caps: [], quietHours: null }, clock.now());
      await seed(store, 'p_rec', population(10).map((p) => ({ ...p, devices: 1, pushEnabled: true })), clock.now());
      const def: RecurringDefinition = {
        ...definition({ name: 'daily' }),
        lateStart: { afterMs: 3_600_000, action: 'cancel' },
        recurrence: { every: 'day', at: '09:00' },
        timezone: null,
        startsAtMs: null,
        endsAtMs: null,
        cooldownMs: 36 * 3_600_000,
      };
      const first = Date.UTC(2026, 9, 5, 7, 0); // 09:00 in Paris (CEST)
      const c: CampaignRecord<RecurringDefinition> = { id: 'rec_daily', projectId: 'p_rec', kind: 'recurring', name: 'daily', status: 'running', definition: def, version: 1, nextRunAt: first, createdAt: clock.now(), updatedAt: clock.now() };
      assert.equal(await store.campaigns.create(c as unknown as CampaignRecord, 'test'), true);
      clock.set(first);
      await runUntilIdle(runner);
      clock.set(first + 86_400_000); // the next day: within the 36 h cooldown
      await seed(store, 'p_rec', population(12).slice(10).map((p) => ({ ...p, devices: 1, pushEnabled: true })), clock.now());
      await runUntilIdle(runner);
      clock.set(first + 2 * 86_400_000 + 5 * 3_600_000); // down for 5 h past the third occurrence: skipped
      await runUntilIdle(runner);
      const runs = await store.campaigns.runs('rec_daily');
      assert.deepEqual(runs.map((r) => r.occurrenceAt), [first, first + 86_400_000]);
      const counts = await store.campaigns.counts('rec_daily');
      const of = (runId: string, state: string, code: string | null = null) => counts.filter((r) => r.runId === runId && r.state === state && r.code === code).reduce((n, r) => n + r.count, 0);
      assert.equal(of(runs[0]!.id, 'queued'), 10);
      assert.equal(of(runs[1]!.id, 'capped', 'COOLDOWN'), 10, 'the first ten got one yesterday');
      assert.equal(of(runs[1]!.id, 'queued'), 2, 'targeting re-evaluated: the two new profiles');
      const history = await store.campaigns.history('rec_daily');
      assert.match(history.at(-1)!.detail, /started 5\.0 h late, more than the late-start limit; skipped/);
      assert.equal((await store.campaigns.byId('rec_daily'))!.nextRunAt, first + 3 * 86_400_000, 'the next occurrence after now');
    });

    it('cancels a campaign whose start was delayed past its limit, and says so', async () => {
      clock.set(Date.UTC(2026, 8, 1, 12, 0));
      const c = await schedule(store, 'p_done', 'cmp_late', definition({ lateStart: { afterMs: 600_000, action: 'cancel' } }), clock.now());
      clock.advance(3_600_000);
      await runUntilIdle(runner);
      assert.equal((await store.campaigns.byId(c.id))!.status, 'cancelled');
      const last = (await store.campaigns.history(c.id)).at(-1)!;
      assert.match(last.detail, /delayed by 60 min, more than the late-start limit of 10 min/);
    });
  });
}

suite(
  'sqlite',
  async () => {
    const tmp = tempDir();
    const store = await SqliteCellStore.open(path.join(tmp.dir, 'store.db'));
    return { store, close: async () => (await store.close(), tmp.remove()) };
  },
  false,
);

let pgDb: TestDatabase | undefined;
suite(
  'postgres',
  async () => {
    pgDb = await createTestDatabase();
    const store = await PgCellStore.open(pgDb.url);
    return { store, close: async () => (await store.close(), await pgDb?.drop()) };
  },
  skipWithoutPg,
);
