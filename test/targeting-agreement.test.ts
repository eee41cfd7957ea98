/**
 * Issue 4, part 2: the two evaluators always agree. fast-check generates profiles (natives,
 * typed attributes, installations, events with attributes, suppressions, audience memberships,
 * message history) and segment trees over every condition; the data goes through the applier's
 * reducer into a real store, and for every segment the bulk evaluator (compiled SQL, streamed)
 * must return exactly the profiles the single-profile evaluator accepts — on SQLite, and on
 * PostgreSQL when HERALD_TEST_PG_URL is set. Each case uses a fresh project in one store.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { CatalogCache, planBatch, type PlannedRecord } from '../src/ingest/apply-plan.ts';
import type { IngestRecord } from '../src/ingest/records.ts';
import type { CellStore } from '../src/storage/cell-store.ts';
import { emptyEffects } from '../src/storage/cell-store.ts';
import { PgCellStore } from '../src/storage/postgres/pg-cell-store.ts';
import { numberPlaceholders } from '../src/storage/postgres/pg-db.ts';
import { SqliteCellStore } from '../src/storage/sqlite/sqlite-cell-store.ts';
import { openSqlite } from '../src/storage/sqlite/sqlite-db.ts';
import { evaluateSegment } from '../src/targeting/evaluate-profile.ts';
import { parseInstant } from '../src/targeting/instant.ts';
import type { AttributeCondition, Segment } from '../src/targeting/segment-model.ts';
import { eventNeeds, type TargetingOptions } from '../src/targeting/targeting-reads.ts';
import { createTestDatabase, skipWithoutPg, type TestDatabase } from './support/services.ts';
import { tempDir } from './support/temp.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 28 Feb 2026, 23:30 UTC: already 1 March in Tokyo and Kiritimati, still 28 Feb in New York (a common year: 02-29 birthdays count today). */
const NOWS = [Date.UTC(2026, 1, 28, 23, 30), Date.UTC(2026, 10, 28, 9, 0), Date.UTC(2024, 1, 29, 12, 0)];
const RUNS = Number(process.env.HERALD_PROPERTY_RUNS ?? 60);

// ── value pools: small, so that conditions hit often ───────────────────────────────────────
const dateOnly = ['2026-02-28', '2026-02-29', '2024-02-29', '1990-03-01', '2026-11-28', '1969-12-31', '2026-01-15'];
const instants = [
  '2026-02-28T23:00:00.000Z',
  '2026-11-20T08:15:00.000Z',
  '2025-12-31T23:59:59.999Z',
  '1990-02-28T12:00:00.000Z',
];
/** Event attributes are stored as sent: offsets, no seconds, long fractions. */
const eventInstants = ['2026-11-27T10:00+02:00', '2026-02-28T20:00:00-05:00', '2026-11-28T00:00:00.123456Z', '2026-02-30', '2026-13-01'];
const words = ['apple', 'Apple', 'apricot', 'b', '', 'é', 'z😀', 'app', '10', '9'];
const strings = [...words, ...dateOnly, ...instants];
const numbers = [-1, 0, 1.5, 2, 10, 1e6];
const scalar = fc.oneof(fc.constantFrom(...strings), fc.constantFrom(...numbers), fc.boolean());
const attrValue = fc.oneof(scalar, fc.array(fc.constantFrom(...words), { maxLength: 3 }));
const ATTRS = ['a', 'b', 'c', 'd'];
const EVENT_ATTRS = ['amount', 'sku', 'when', 'tags'];
const EVENTS = ['buy', 'view', 'cart'];
const ZONES = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'Pacific/Kiritimati', 'UTC'];
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];

interface GenProfile {
  customId: string;
  natives: Record<string, string>;
  custom: Record<string, unknown>;
  events: { name: string; agoMs: number; attributes: Record<string, unknown> | null }[];
  installs: { platform: 'ios' | 'android' | 'web'; token: boolean; enabled: boolean; disabled: boolean }[];
  suppressEmail: boolean;
  suppressPhone: boolean;
  audiences: { audience: 'A' | 'B'; by: 'custom_id' | 'install_id' }[];
  messages: { send: string; template: string | null; state: 'sent' | 'suppressed' | 'failed'; agoMs: number; opened: boolean; clicked: boolean }[];
}

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const profileArb: fc.Arbitrary<Omit<GenProfile, 'customId'>> = fc.record({
  natives: fc
    .record({
      language: optional(fc.constantFrom('fr', 'en', 'de')),
      region: optional(fc.constantFrom('FR', 'US')),
      timezone: optional(fc.constantFrom(...ZONES)),
      email: optional(fc.constantFrom('a@example.com', 'b@example.com')),
      emailMarketing: optional(fc.constantFrom('subscribed', 'unsubscribed')),
      phone: optional(fc.constantFrom('+33612345678', '+14155550100')),
      smsMarketing: optional(fc.constantFrom('subscribed', 'unsubscribed')),
    })
    .map((n) => Object.fromEntries(Object.entries(n).filter(([, v]) => v !== undefined)) as Record<string, string>),
  custom: fc.dictionary(fc.constantFrom(...ATTRS), attrValue, { maxKeys: 4 }),
  events: fc.array(
    fc.record({
      name: fc.constantFrom(...EVENTS),
      agoMs: fc.integer({ min: -2 * DAY, max: 400 * DAY }),
      attributes: fc.option(
        fc.dictionary(
          fc.constantFrom(...EVENT_ATTRS),
          fc.oneof(scalar, fc.constantFrom(...eventInstants), fc.array(fc.constantFrom(...words), { maxLength: 3 }), fc.constant(null), fc.constant({ x: 1 })),
          { maxKeys: 3 },
        ),
        { nil: null },
      ),
    }),
    { maxLength: 6 },
  ),
  installs: fc.array(
    fc.record({ platform: fc.constantFrom('ios' as const, 'android' as const, 'web' as const), token: fc.boolean(), enabled: fc.boolean(), disabled: fc.boolean() }),
    { maxLength: 2 },
  ),
  suppressEmail: fc.boolean(),
  suppressPhone: fc.boolean(),
  audiences: fc.array(fc.record({ audience: fc.constantFrom('A' as const, 'B' as const), by: fc.constantFrom('custom_id' as const, 'install_id' as const) }), { maxLength: 2 }),
  messages: fc.array(
    fc.record({
      send: fc.constantFrom('snd_1', 'snd_2'),
      template: fc.constantFrom('tpl_x', null),
      state: fc.constantFrom('sent' as const, 'suppressed' as const, 'failed' as const),
      agoMs: fc.integer({ min: 0, max: 60 * DAY }),
      opened: fc.boolean(),
      clicked: fc.boolean(),
    }),
    { maxLength: 2 },
  ),
});

const dataArb = fc.uniqueArray(fc.constantFrom(...USERS), { minLength: 1, maxLength: USERS.length }).chain((ids) =>
  fc.tuple(...ids.map(() => profileArb)).map((ps) => ps.map((p, i): GenProfile => ({ ...p, customId: ids[i]! }))),
);

// ── segments ───────────────────────────────────────────────────────────────────────────────
const windowArb = fc.oneof(
  fc.record({ last_days: fc.integer({ min: 1, max: 400 }) }),
  fc.constantFrom({ from: '2026-02-01', to: '2026-03-01T00:00:00Z' }, { from: '2025-11-28T00:00:00+01:00', to: '2026-11-28' }),
);

function attributeCondition(names: readonly string[], extraStrings: readonly string[] = []): fc.Arbitrary<AttributeCondition> {
  const attribute = fc.constantFrom(...names);
  const s = fc.oneof(scalar, fc.constantFrom(...extraStrings, ...instants));
  return fc.oneof(
    fc.record({ attribute, op: fc.constantFrom('eq' as const, 'ne' as const, 'gt' as const, 'gte' as const, 'lt' as const, 'lte' as const, 'contains' as const, 'starts_with' as const), value: s }),
    fc.record({ attribute, op: fc.constant('exists' as const) }),
    fc.record({ attribute, op: fc.constant('anniversary_today' as const) }),
    fc.record({ attribute, op: fc.constantFrom('in' as const, 'contains_any' as const, 'contains_all' as const), value: fc.array(scalar, { minLength: 1, maxLength: 3 }) }),
    fc.record({
      attribute,
      op: fc.constant('between' as const),
      value: fc.oneof(fc.tuple(fc.constantFrom(...numbers), fc.constantFrom(...numbers)), fc.tuple(fc.constantFrom(...dateOnly), fc.constantFrom(...instants))),
    }),
    fc.record({ attribute, op: fc.constantFrom('within_last_days' as const, 'more_than_days_ago' as const), value: fc.integer({ min: 1, max: 400 }) }),
  );
}

const leafArb: fc.Arbitrary<Segment> = fc.oneof(
  attributeCondition(ATTRS),
  fc.oneof(
    fc.record({ native: fc.constantFrom('language' as const, 'region' as const, 'timezone' as const), op: fc.constantFrom('eq' as const, 'ne' as const), value: fc.constantFrom('fr', 'US', 'Asia/Tokyo') }),
    fc.record({ native: fc.constantFrom('email_marketing' as const, 'sms_marketing' as const), op: fc.constantFrom('eq' as const, 'ne' as const), value: fc.constantFrom('subscribed', 'unsubscribed') }),
    fc.record({ native: fc.constantFrom('language' as const, 'timezone' as const), op: fc.constant('exists' as const) }),
    fc.record({ native: fc.constant('language' as const), op: fc.constant('in' as const), value: fc.constant(['fr', 'de']) }),
  ),
  fc.record(
    {
      event: fc.constantFrom(...EVENTS),
      where: fc.array(attributeCondition(EVENT_ATTRS, eventInstants), { minLength: 1, maxLength: 2 }),
      count: fc.record({ op: fc.constantFrom('gte' as const, 'lte' as const, 'eq' as const), value: fc.integer({ min: 0, max: 3 }) }),
      window: windowArb,
    },
    { requiredKeys: ['event'] },
  ),
  fc.record(
    {
      occurrence: fc.constantFrom('first' as const, 'last' as const),
      event: fc.constantFrom(...EVENTS),
      where: fc.array(attributeCondition(EVENT_ATTRS, eventInstants), { minLength: 1, maxLength: 1 }),
      op: fc.constantFrom('before' as const, 'after' as const),
      value: fc.oneof(fc.record({ days_ago: fc.integer({ min: 0, max: 300 }) }), fc.constantFrom(...instants)),
    },
    { requiredKeys: ['occurrence', 'event', 'op', 'value'] },
  ),
  fc.record({ audience: fc.constantFrom('A', 'B', 'unknown') }),
  fc.record({ segment: fc.constantFrom('saved', 'missing') }),
  fc.oneof(
    fc.record({ reachable: fc.constant('push' as const), platform: fc.constantFrom('ios' as const, 'android' as const, 'web' as const) }),
    fc.record({ reachable: fc.constantFrom('push' as const, 'email' as const, 'sms' as const) }),
  ),
  fc.record(
    {
      message: fc.constantFrom('received' as const, 'opened' as const, 'clicked' as const, 'suppressed' as const),
      send: fc.constantFrom('snd_1', 'snd_2'),
      window: windowArb,
    },
    { requiredKeys: ['message'] },
  ),
  fc.record({ message: fc.constantFrom('received' as const, 'opened' as const), template: fc.constant('tpl_x') }),
  fc.record({ bucket: fc.tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), fc.constantFrom('', 'holdout')).map(([a, b, salt]) => ({ from: Math.min(a, b), to: Math.max(a, b), salt })) }),
);

const segmentArb: fc.Arbitrary<Segment> = fc.letrec<{ node: Segment }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.record({ and: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ or: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ not: tie('node') }),
  ),
})).node;

const SAVED: Segment = { or: [{ native: 'language', op: 'eq', value: 'fr' }, { event: 'buy', count: { op: 'gte', value: 2 } }] };

// ── writing the generated data through the real write paths ───────────────────────────────
interface Backend {
  store: CellStore;
  /** Fixtures with no write path of their own here: delivery outcomes, suppressions, audience members. */
  exec(sql: string, params: unknown[]): Promise<void>;
  query(sql: string, params: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

async function load(b: Backend, projectId: string, profiles: GenProfile[], nowMs: number): Promise<void> {
  const records: IngestRecord[] = [];
  for (const p of profiles) {
    records.push({
      kind: 'profile.update',
      project_id: projectId,
      custom_id: p.customId,
      received_at: nowMs,
      attributes: { natives: p.natives, custom: p.custom } as never,
      events: p.events.map((e, i) => ({ name: e.name, time_ms: nowMs - e.agoMs, id: `${p.customId}-${i}`, ...(e.attributes ? { attributes: e.attributes } : {}) })),
    });
    p.installs.forEach((inst, i) => {
      records.push({
        kind: 'installation.upsert',
        project_id: projectId,
        install_id: `${p.customId}-i${i}`,
        custom_id: p.customId,
        platform: inst.platform,
        ...(inst.platform === 'web'
          ? { web_push: inst.token ? { endpoint: `https://push.example/${p.customId}${i}`, keys: { p256dh: 'k', auth: 'a' } } : null }
          : { push_token: inst.token ? `tok-${p.customId}-${i}` : null }),
        push_enabled: inst.enabled,
        received_at: nowMs,
      });
    });
  }
  let seq = await b.store.appliedSeq('log-prop');
  const planned: PlannedRecord[] = records.map((record, i) => ({ seq: seq + i + 1, record }));
  await b.store.applyBatch('log-prop', seq, seq + records.length, (tx) => planBatch(tx, planned, new CatalogCache()));
  seq += records.length;

  // Message history goes through the store's send/outbox write path.
  const effects = emptyEffects();
  for (const p of profiles) {
    p.messages.forEach((m, i) => {
      effects.messages.push({
        id: `msg_${projectId}_${p.customId}_${i}`,
        projectId,
        sendId: m.send,
        idempotencyKey: `${projectId}|${p.customId}|${i}`,
        channel: 'email',
        category: 'marketing',
        lane: 2,
        customId: p.customId,
        installId: null,
        platform: null,
        recipient: `${p.customId}@example.com`,
        webPush: null,
        content: { email: { subject: 's', text: 't' } } as never,
        state: m.state === 'suppressed' ? 'suppressed' : 'queued',
        reason: null,
        errorCode: null,
        expiresAt: null,
        createdAt: nowMs - m.agoMs,
        templateId: m.template,
      });
      const messageId = `msg_${projectId}_${p.customId}_${i}`;
      if (m.opened) effects.engagements.push({ projectId, messageId, type: 'opened', atMs: nowMs - m.agoMs + 2000 });
      if (m.clicked) effects.engagements.push({ projectId, messageId, type: 'clicked', atMs: nowMs - m.agoMs + 3000 });
    });
  }
  await b.store.applyBatch('log-prop', seq, seq + 1, () => Promise.resolve(effects));
  seq += 1;
  for (const p of profiles) {
    for (const [i, m] of p.messages.entries()) {
      const id = `msg_${projectId}_${p.customId}_${i}`;
      if (m.state === 'sent') await b.exec("UPDATE messages SET state = 'sent', sent_at = ? WHERE id = ?", [nowMs - m.agoMs + 1000, id]);
      if (m.state === 'failed') await b.exec("UPDATE messages SET state = 'failed' WHERE id = ?", [id]);
    }
    // A token the provider refused (as the delivery feedback records it): the installation is no longer reachable.
    for (const [i, inst] of p.installs.entries()) {
      if (inst.disabled) await b.exec("UPDATE installations SET push_disabled_reason = 'BadDeviceToken' WHERE project_id = ? AND install_id = ?", [projectId, `${p.customId}-i${i}`]);
    }
    if (p.suppressEmail && p.natives.email) await b.exec("INSERT INTO suppressions (project_id, channel, address, reason, created_at) VALUES (?, 'email', ?, 'bounce', ?) ON CONFLICT DO NOTHING", [projectId, p.natives.email, nowMs]);
    if (p.suppressPhone && p.natives.phone) await b.exec("INSERT INTO suppressions (project_id, channel, address, reason, created_at) VALUES (?, 'sms', ?, 'STOP', ?) ON CONFLICT DO NOTHING", [projectId, p.natives.phone, nowMs]);
    for (const a of p.audiences) {
      const member = a.by === 'custom_id' ? p.customId : `${p.customId}-i0`;
      await b.exec('INSERT INTO audience_members (audience_id, version, kind, member) VALUES (?, 1, ?, ?) ON CONFLICT DO NOTHING', [`${projectId}_${a.audience}`, a.by, member]);
      // A member of the replaced version must not count.
      await b.exec('INSERT INTO audience_members (audience_id, version, kind, member) VALUES (?, 0, ?, ?) ON CONFLICT DO NOTHING', [`${projectId}_${a.audience === 'A' ? 'B' : 'A'}`, a.by, member]);
    }
  }
  for (const a of ['A', 'B']) {
    await b.exec('INSERT INTO audience_versions (audience_id, project_id, live_version, member_count, updated_at) VALUES (?, ?, 1, 0, ?)', [`${projectId}_${a}`, projectId, nowMs]);
  }
}

let project = 0;

function runAgreement(name: string, open: () => Promise<Backend>, skip: string | false): void {
  describe(`targeting: bulk and single-profile evaluators agree (${name})`, { skip }, () => {
    let backend: Backend;
    before(async () => {
      backend = await open();
    });
    after(async () => backend?.close());

    it('the store reads dates exactly as parseInstant does (herald_instant)', async () => {
      const digits = (n: number) => fc.stringMatching(new RegExp(`^[0-9]{${n}}$`));
      const dateLike = fc
        .tuple(digits(4), digits(2), digits(2), fc.option(fc.tuple(digits(2), digits(2), fc.option(digits(2)), fc.option(fc.stringMatching(/^[0-9]{1,9}$/)), fc.constantFrom('Z', '+05:30', '-0800', '+24:00', '-00:61', ''))))
        .map(([y, m, d, t]) => `${y}-${m}-${d}${t ? `T${t[0]}:${t[1]}${t[2] !== null ? `:${t[2]}${t[3] !== null ? `.${t[3]}` : ''}` : ''}${t[4]}` : ''}`);
      const fixed = ['2024-02-29', '2023-02-29', '0000-01-01', '0001-01-01', '9999-12-31T23:59:59.9999999Z', '2026-11-28T10:00+0530', '2026-11-28 10:00Z', '2026-11-28T24:00:00Z', 'x2026-11-28', ''];
      await fc.assert(
        fc.asyncProperty(fc.array(fc.oneof(dateLike, fc.constantFrom(...fixed), fc.string()), { minLength: 1, maxLength: 20 }), async (values) => {
          for (const v of values) {
            const [row] = await backend.query('SELECT herald_instant(?) AS t', [v]);
            const t = row?.t === null || row?.t === undefined ? undefined : Number(row.t);
            assert.equal(t, parseInstant(v), `herald_instant(${JSON.stringify(v)})`);
          }
        }),
        { numRuns: 100, includeErrorInReport: true },
      );
    });

    it('on random profiles, events, memberships, history and segments', async () => {
      await fc.assert(
        fc.asyncProperty(dataArb, fc.array(segmentArb, { minLength: 1, maxLength: 4 }), fc.constantFrom(...NOWS), async (profiles, segments, nowMs) => {
          const projectId = `prj_prop${++project}`;
          await load(backend, projectId, profiles, nowMs);
          const options: TargetingOptions = {
            nowMs,
            resolveSegment: (ref) => (ref === 'saved' ? SAVED : undefined),
            resolveAudience: (n) => (n === 'A' || n === 'B' ? `${projectId}_${n}` : undefined),
            batchSize: 2,
          };
          for (const segment of segments) {
            const bulk: string[] = [];
            let lastId = 0;
            for await (const batch of backend.store.matchingProfiles(projectId, segment, options)) {
              for (const m of batch) {
                assert.ok(m.id > lastId, 'ids stream in ascending order');
                lastId = m.id;
                bulk.push(m.customId);
              }
            }
            const single: string[] = [];
            const events = eventNeeds(segment, nowMs, options.resolveSegment);
            const reach = { any: 0, ios: 0, android: 0, web: 0, email: 0, sms: 0 };
            for (const p of profiles) {
              // Facts read for this segment only (the events it needs, the aggregate for the rest) and
              // every fact of the profile must give the same answer.
              const facts = await backend.store.profileFacts(projectId, p.customId, { events });
              const everything = await backend.store.profileFacts(projectId, p.customId);
              assert.ok(facts && everything, `profile ${p.customId} was stored`);
              const member = evaluateSegment(segment, facts, options);
              assert.equal(evaluateSegment(segment, { ...everything, eventCounts: undefined }, options), member, `${p.customId}: the aggregate and the events agree`);
              if (!member) continue;
              single.push(p.customId);
              const reaches = (s: Segment): number => (evaluateSegment(s, facts, options) ? 1 : 0);
              reach.any += reaches({ reachable: 'push' });
              reach.ios += reaches({ reachable: 'push', platform: 'ios' });
              reach.android += reaches({ reachable: 'push', platform: 'android' });
              reach.web += reaches({ reachable: 'push', platform: 'web' });
              reach.email += reaches({ reachable: 'email' });
              reach.sms += reaches({ reachable: 'sms' });
            }
            assert.deepEqual(
              [...bulk].sort(),
              [...single].sort(),
              `segment ${JSON.stringify(segment)} at ${new Date(nowMs).toISOString()}: bulk ${JSON.stringify(bulk)} vs single ${JSON.stringify(single)}`,
            );
            const estimate = await backend.store.estimateSegment(projectId, segment, options);
            assert.equal(estimate.total, bulk.length, 'the estimate counts the same profiles');
            const { any, ios, android, web, email, sms } = reach;
            assert.deepEqual(estimate.reachable, { push: { any, ios, android, web }, email, sms }, 'reachability per channel as the single evaluator sees it');
          }
        }),
        { numRuns: RUNS, includeErrorInReport: true },
      );
    });
  });
}

runAgreement(
  'sqlite',
  async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'store.db');
    const store = await SqliteCellStore.open(file);
    const raw = openSqlite(file);
    return {
      store,
      exec: async (sql, params) => {
        raw.prepare(sql).run(...params);
      },
      query: async (sql, params) => raw.prepare(sql).all(...params) as Record<string, unknown>[],
      close: async () => {
        raw.close();
        await store.close();
        tmp.remove();
      },
    };
  },
  false,
);

let pgDb: TestDatabase | undefined;
runAgreement(
  'postgres',
  async () => {
    pgDb = await createTestDatabase();
    const store = await PgCellStore.open(pgDb.url);
    const client = new pg.Client({ connectionString: pgDb.url });
    await client.connect();
    return {
      store,
      exec: async (sql, params) => {
        await client.query(numberPlaceholders(sql), params);
      },
      query: async (sql, params) => (await client.query(numberPlaceholders(sql), params)).rows,
      close: async () => {
        await client.end();
        await store.close();
        await pgDb?.drop();
      },
    };
  },
  skipWithoutPg,
);
