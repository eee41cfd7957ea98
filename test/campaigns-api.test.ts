import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assignVariant } from '../src/orchestration/campaign-model.ts';
import { arrived, iosProfile, sleep, uid } from './support/delivery-client.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Campaigns end to end (issue 5), against a real Herald and its sandbox, through HTTP only: a
 * segment campaign with language content, two variants and a control group arrives once per
 * device at the sandbox APNs, its report reconciles (I4), pause/resume/cancel act on queued
 * messages, and bad input is a 400 naming the field with nothing created (I9).
 */
const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

for (const { backend, skip } of backends) {
  describe(`campaigns API end to end (${backend})`, { skip }, () => {
    let h: TestApp;
    const tag = uid();
    const tokens = new Map<string, string>();
    before(async () => {
      h = await startTestApp(backend);
      for (let i = 0; i < 30; i++) {
        const id = `c-${tag}-${i}`;
        tokens.set(id, await iosProfile(h, id, { $language: i % 3 === 0 ? 'fr' : 'en', first_name: `N${i}`, plan: i % 2 === 0 ? 'pro' : 'free', cohort: tag }));
      }
      // Applied and provider wired (the delivery thread sees the demo's sandbox providers within a second).
      await until('profiles applied', async () => {
        const res = await h.api('POST', '/v1/segments/estimate', { segment: { attribute: 'cohort', op: 'eq', value: tag } });
        return res.status === 200 && res.body.reachable.push.any === 30 ? true : undefined;
      });
      await sleep(1_500);
    });
    after(async () => h?.stop());

    it('sends a segment campaign with variants and a control group: once per device, rendered per language, counts reconcile', async () => {
      const create = await h.api('POST', '/v1/campaigns', {
        name: `Spring ${tag}`,
        channel: 'push',
        target: { segment: { and: [{ attribute: 'cohort', op: 'eq', value: tag }, { attribute: 'plan', op: 'eq', value: 'pro' }] } },
        variants: [
          { name: 'A', weight: 50, content: { default: { title: 'Hello {{ profile.first_name }}', body: 'A' }, fr: { title: 'Bonjour {{ profile.first_name }}', body: 'A' } } },
          { name: 'B', weight: 50, content: { default: { title: 'Hi {{ profile.first_name }}', body: 'B' } } },
        ],
        control_percent: 20,
      });
      assert.equal(create.status, 201, JSON.stringify(create.body));
      assert.equal(create.body.status, 'draft');
      const id = create.body.id as string;
      const scheduled = await h.api('POST', `/v1/campaigns/${id}/schedule`);
      assert.equal(scheduled.status, 200, JSON.stringify(scheduled.body));
      assert.equal(scheduled.body.status, 'scheduled');

      const report = await until('the campaign to complete', async () => {
        const r = await h.api('GET', `/v1/campaigns/${id}/report`);
        return r.body.status === 'completed' ? r.body : undefined;
      });
      assert.equal(report.targeted, 15, 'the 15 "pro" profiles, one device each');
      assert.equal(report.reconciled, true);
      assert.equal(report.counts.sent + report.counts.control, 15);
      // Each profile's arm is the reference function's: exact counts per arm.
      const arms = { A: 0, B: 0, control: 0 } as Record<string, number>;
      for (let i = 0; i < 30; i += 2) arms[assignVariant(h.projectId, id, `c-${tag}-${i}`, [{ name: 'A', weight: 50 }, { name: 'B', weight: 50 }], 20)]! += 1;
      assert.equal(report.counts.control, arms.control);
      assert.equal(report.variants.A.sent, arms.A);
      assert.equal(report.variants.B.sent, arms.B);

      for (let i = 0; i < 30; i += 2) {
        const customId = `c-${tag}-${i}`;
        const got = await arrived(h, { kind: 'apns', to: tokens.get(customId)! });
        const mine = got.filter((m) => /N\d+$/.test(m.body?.aps?.alert?.title ?? '') && m.body.aps.alert.title.endsWith(`N${i}`));
        assert.ok(mine.length <= 1, `at most one push for ${customId}`);
        if (mine.length === 1) {
          const title = mine[0].body.aps.alert.title as string;
          if (i % 3 === 0 && mine[0].body.aps.alert.body === 'A') assert.equal(title, `Bonjour N${i}`);
          else assert.ok(title === `Hello N${i}` || title === `Hi N${i}`, title);
        }
      }
      const atApns = (await Promise.all([...Array(15).keys()].map((k) => arrived(h, { kind: 'apns', to: tokens.get(`c-${tag}-${k * 2}`)! })))).flat();
      assert.equal(atApns.length, report.counts.sent, 'the sandbox got exactly the sent messages');
      const free = await arrived(h, { kind: 'apns', to: tokens.get(`c-${tag}-1`)! });
      assert.equal(free.length, 0, 'outside the segment: nothing');

      const read = await h.api('GET', `/v1/campaigns/${encodeURIComponent(`Spring ${tag}`)}`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.history.map((e: { kind: string }) => e.kind), ['created', 'scheduled', 'launched', 'materialized', 'completed']);
    });

    it('pauses (queued messages held), resumes, and cancels what is left, with reasons; the report adds up', async () => {
      const create = await h.api('POST', '/v1/campaigns', {
        name: `Slow ${tag}`,
        channel: 'push',
        target: { segment: { attribute: 'cohort', op: 'eq', value: tag } },
        content: { title: 'Slow' },
        rate_per_minute: 6,
      });
      assert.equal(create.status, 201, JSON.stringify(create.body));
      const id = create.body.id as string;
      assert.equal((await h.api('POST', `/v1/campaigns/${id}/schedule`)).status, 200);
      await until('materialised', async () => {
        const r = await h.api('GET', `/v1/campaigns/${id}/report`);
        return r.body.targeted === 30 ? true : undefined;
      });
      const paused = await h.api('POST', `/v1/campaigns/${id}/pause`);
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal(paused.body.status, 'paused');
      assert.equal((await h.api('POST', `/v1/campaigns/${id}/pause`)).body.error.code, 'CAMPAIGN_STATE');
      const resumed = await h.api('POST', `/v1/campaigns/${id}/resume`);
      assert.equal(resumed.body.status, 'running');
      const cancelled = await h.api('POST', `/v1/campaigns/${id}/cancel`);
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.status, 'cancelled');
      const report = await until('nothing in flight', async () => {
        const r = await h.api('GET', `/v1/campaigns/${id}/report`);
        return r.body.counts.queued === 0 && r.body.counts.sending === 0 ? r.body : undefined;
      });
      assert.equal(report.reconciled, true);
      assert.equal(report.counts.sent + report.counts.cancelled, 30);
      assert.ok(report.counts.cancelled >= 25, 'at 6 a minute, most were still queued');
      assert.ok(report.reasons.some((r: { code: string }) => r.code === 'CAMPAIGN_CANCELLED'));
      assert.deepEqual(cancelled.body.history.map((e: { kind: string }) => e.kind).slice(-3), ['paused', 'resumed', 'cancelled']);
    });

    it('refuses bad campaigns with the path of each problem, and creates nothing', async () => {
      const before = (await h.api('GET', '/v1/campaigns?limit=200')).body.campaigns.length;
      const cases: [unknown, string, string][] = [
        [{ name: 'w', channel: 'push', variants: [{ name: 'A', weight: 60, content: { title: 'a' } }, { name: 'B', weight: 30, content: { title: 'b' } }] }, '/variants', 'WEIGHTS_NOT_100'],
        [{ name: 't', channel: 'push', template: 'no-such-template' }, '/template', 'TEMPLATE_NOT_FOUND'],
        [{ name: 's', channel: 'push', content: { title: 'x' }, target: { segment: 'no-such-segment' } }, '/target/segment', 'UNKNOWN_SEGMENT'],
        [{ name: 'a', channel: 'push', content: { title: 'x' }, target: { audiences: ['nobody'] } }, '/target/audiences/0', 'AUDIENCE_NOT_FOUND'],
        [{ name: 'c', channel: 'fax', content: { title: 'x' } }, '/channel', 'INVALID_VALUE'],
        [{ name: 'l', channel: 'push', content: { title: 'x' }, send_at: { local: '2026-02-30T09:00' } }, '/send_at/local', 'INVALID_VALUE'],
        [{ name: 'f', channel: 'push', content: { title: 'x' }, freshness: { expires_after: 'soon' } }, '/freshness/expires_after', 'INVALID_VALUE'],
        [{ name: 'q', channel: 'push', content: { title: '{{ unclosed' } }, '/content', 'TEMPLATE_SYNTAX'],
      ];
      for (const [body, path, code] of cases) {
        const res = await h.api('POST', '/v1/campaigns', body);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'VALIDATION_FAILED');
        assert.ok(
          res.body.error.details.some((d: { path: string; code: string }) => d.path.startsWith(path) && d.code === code),
          `${code} at ${path}: ${JSON.stringify(res.body.error.details)}`,
        );
      }
      // A schedule in the past is refused when scheduling, and the draft stays a draft.
      const past = await h.api('POST', '/v1/campaigns', { name: `Past ${tag}`, channel: 'push', content: { title: 'x' }, send_at: '2020-01-01T00:00:00Z' });
      assert.equal(past.status, 201);
      const refused = await h.api('POST', `/v1/campaigns/${past.body.id}/schedule`);
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.details[0].code, 'SCHEDULE_IN_PAST');
      assert.equal(refused.body.error.details[0].path, '/send_at');
      assert.equal((await h.api('GET', `/v1/campaigns/${past.body.id}`)).body.status, 'draft');
      assert.equal((await h.api('GET', '/v1/campaigns?limit=200')).body.campaigns.length, before + 1);
      assert.equal((await h.api('DELETE', `/v1/campaigns/${past.body.id}`)).status, 204);
      assert.equal((await h.api('GET', `/v1/campaigns/${past.body.id}`)).status, 404);
    });

    it('keeps messaging settings, refusing bad ones with their path', async () => {
      const bad = await h.api('PUT', '/v1/settings/messaging', { timezone: 'Mars/Base', frequency_caps: [{ channel: 'push', max: 0, window: '1d' }], quiet_hours: { start: '22:00', end: '22:00' } });
      assert.equal(bad.status, 400);
      const paths = bad.body.error.details.map((d: { path: string }) => d.path).sort();
      assert.deepEqual(paths, ['/frequency_caps/0/max', '/quiet_hours', '/timezone']);
      const good = await h.api('PUT', '/v1/settings/messaging', { timezone: 'Europe/Paris', frequency_caps: [{ channel: 'push', max: 2, window: '1d' }], quiet_hours: { start: '22:00', end: '08:00' } });
      assert.equal(good.status, 200, JSON.stringify(good.body));
      const read = await h.api('GET', '/v1/settings/messaging');
      assert.deepEqual(read.body, { timezone: 'Europe/Paris', frequency_caps: [{ channel: 'push', max: 2, window: '86400s' }], quiet_hours: { start: '22:00', end: '08:00' } });
      await h.api('PUT', '/v1/settings/messaging', {});
    });
  });
}
