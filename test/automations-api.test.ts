import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { arrived, iosProfile, sleep, uid } from './support/delivery-client.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Automations end to end (issue 5, parts 3, 4, 6, 7), through HTTP against a real Herald and its
 * sandbox: a cart-abandonment journey (short waits) pushes then emails the user who did not buy
 * and stops for the one who did (exit event), once per step, with a per-step report; recurring
 * automations are scheduled, paused and stopped; bad graphs and schedules are 400s naming the field.
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
  describe(`automations API end to end (${backend})`, { skip }, () => {
    let h: TestApp;
    const tag = uid();
    before(async () => {
      h = await startTestApp(backend);
      await sleep(1_500); // the delivery thread sees the demo's sandbox providers
    });
    after(async () => h?.stop());

    const track = async (customId: string, name: string, attributes: Record<string, unknown> = {}) => {
      const res = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: customId }, events: [{ name, id: uid(), attributes }] }]);
      assert.equal(res.status, 202, JSON.stringify(res.body));
    };

    it('cart abandonment: push after the wait, email after the second, once each; a purchase stops it', async () => {
      const alice = `alice-${tag}`;
      const bob = `bob-${tag}`;
      const aliceToken = await iosProfile(h, alice, { $email_address: `${alice}@example.com` });
      const bobToken = await iosProfile(h, bob, { $email_address: `${bob}@example.com` });
      const create = await h.api('POST', '/v1/automations', {
        type: 'journey',
        name: `Cart ${tag}`,
        entry: { event: 'cart_abandoned', where: [{ attribute: 'total', op: 'gte', value: 20 }] },
        exit_events: [{ event: 'purchase' }],
        steps: [
          { id: 'wait1', type: 'wait', duration: '3s', next: 'check1' },
          { id: 'check1', type: 'branch', condition: { not: { event: 'purchase', window: { last_days: 1 } } }, then: 'push1', else: 'done' },
          { id: 'push1', type: 'send', channel: 'push', content: { title: 'Your cart: {{ data.total }} €' }, next: 'wait2' },
          { id: 'wait2', type: 'wait', duration: '3s', next: 'email1' },
          { id: 'email1', type: 'send', channel: 'email', category: 'transactional', content: { subject: 'Still thinking?', html: '<p>{{ data.total }} € in your cart</p>' }, next: 'done' },
          { id: 'done', type: 'exit' },
        ],
      });
      assert.equal(create.status, 201, JSON.stringify(create.body));
      assert.equal(create.body.status, 'draft');
      const id = create.body.id as string;
      const activated = await h.api('POST', `/v1/automations/${id}/activate`);
      assert.equal(activated.status, 200, JSON.stringify(activated.body));
      assert.equal(activated.body.status, 'running');
      assert.equal(activated.body.journey_version, 1);
      await sleep(300);

      await track(alice, 'cart_abandoned', { total: 42 });
      await track(bob, 'cart_abandoned', { total: 42 });
      await sleep(500);
      await track(bob, 'purchase');

      const pushes = await until('the push to alice', async () => {
        const got = await arrived(h, { kind: 'apns', to: aliceToken });
        return got.length > 0 ? got : undefined;
      });
      assert.equal(pushes[0].body.aps.alert.title, 'Your cart: 42 €');
      const emails = await until('the email to alice', async () => {
        const got = await arrived(h, { kind: 'smtp', to: `${alice}@example.com` });
        return got.length > 0 ? got : undefined;
      });
      assert.equal(emails.length, 1);
      await sleep(1_500);
      assert.equal((await arrived(h, { kind: 'apns', to: aliceToken })).length, 1, 'one push per step');
      assert.equal((await arrived(h, { kind: 'apns', to: bobToken })).length, 0, 'bob bought: nothing');
      assert.equal((await arrived(h, { kind: 'smtp', to: `${bob}@example.com` })).length, 0);

      const report = await until('the report', async () => {
        const r = await h.api('GET', `/v1/automations/${id}/report`);
        return r.body.messages?.counts?.sent === 2 ? r.body : undefined;
      });
      assert.deepEqual(report.enrollments, { done: 1, exited: 1 });
      const step = (s: string) => report.steps.find((x: { id: string }) => x.id === s);
      assert.equal(step('push1').messages.sent, 1);
      assert.equal(step('email1').messages.sent, 1);
      assert.equal(step('wait1').outcomes.exited, 1, 'bob left while waiting');
    });

    it('refuses a journey with a loop without a wait, an unreachable step, or an unknown template, naming the field', async () => {
      const base = { type: 'journey', name: `Bad ${tag}`, entry: { event: 'x' } };
      const cases: [unknown, string, string][] = [
        [{ ...base, steps: [{ id: 'a', type: 'branch', condition: { event: 'y' }, then: 'b', else: 'a' }, { id: 'b', type: 'exit' }] }, '/steps/0', 'CYCLE_WITHOUT_WAIT'],
        [{ ...base, steps: [{ id: 'a', type: 'exit' }, { id: 'b', type: 'exit' }] }, '/steps/1', 'UNREACHABLE_STEP'],
        [{ ...base, steps: [{ id: 'a', type: 'send', channel: 'push', template: 'nope' }] }, '/steps/0/template', 'TEMPLATE_NOT_FOUND'],
        [{ ...base, type: 'nightly' }, '/type', 'INVALID_VALUE'],
      ];
      for (const [body, path, code] of cases) {
        const res = await h.api('POST', '/v1/automations', body);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.ok(res.body.error.details.some((d: { path: string; code: string }) => d.path === path && d.code === code), `${code} at ${path}: ${JSON.stringify(res.body.error.details)}`);
      }
    });

    it('recurring: a schedule that never fires is refused; a daily one is scheduled, paused, resumed and stopped', async () => {
      const never = await h.api('POST', '/v1/automations', { type: 'recurring', name: `Never ${tag}`, channel: 'push', content: { title: 'x' }, schedule: { cron: '0 0 30 2 *' } });
      assert.equal(never.status, 400);
      assert.deepEqual(never.body.error.details.map((d: { path: string; code: string }) => [d.path, d.code]), [['/schedule/cron', 'NEVER_FIRES']]);
      const badCron = await h.api('POST', '/v1/automations', { type: 'recurring', name: `Bad ${tag}`, channel: 'push', content: { title: 'x' }, schedule: { cron: '61 * * * *' } });
      assert.equal(badCron.body.error.details[0].path, '/schedule/cron');

      const create = await h.api('POST', '/v1/automations', {
        type: 'recurring',
        name: `Daily ${tag}`,
        channel: 'push',
        content: { title: 'Good morning' },
        schedule: { every: 'day', at: '09:00', timezone: 'Asia/Tokyo' },
        cooldown: '7d',
      });
      assert.equal(create.status, 201, JSON.stringify(create.body));
      const id = create.body.id as string;
      assert.deepEqual(create.body.definition.schedule, { every: 'day', at: '09:00', timezone: 'Asia/Tokyo' });
      const active = await h.api('POST', `/v1/automations/${id}/activate`);
      assert.equal(active.status, 200, JSON.stringify(active.body));
      const next = Date.parse(active.body.next_run_at as string);
      assert.ok(next > Date.now() && next <= Date.now() + 86_400_000);
      assert.equal(new Date(next).getUTCHours(), 0, '09:00 in Tokyo is 00:00 UTC');
      assert.equal((await h.api('POST', `/v1/automations/${id}/pause`)).body.status, 'paused');
      assert.equal((await h.api('POST', `/v1/automations/${id}/resume`)).body.status, 'running');
      const stopped = await h.api('POST', `/v1/automations/${id}/stop`);
      assert.equal(stopped.body.status, 'cancelled');
      assert.equal((await h.api('POST', `/v1/automations/${id}/resume`)).status, 409);
    });
  });
}
