import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertRejected, callAs, uid } from './support/delivery-client.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Saved segments (issue 4, parts 1 and 5) through the real HTTP server: checked against what the
 * project's data has shown (attribute types, event names), every problem a 400 naming the node,
 * nothing saved when refused; references, cycles and deletion of a segment in use.
 */
const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

for (const { backend, skip } of backends) {
  describe(`saved segments API (${backend})`, { skip }, () => {
    let h: TestApp;
    let key: string;
    before(async () => {
      h = await startTestApp(backend);
      key = (await h.app.control.createProject(`seg-${uid()}`)).secretKey.key;
      // The project's data: a string, a number and a date attribute, and one event.
      const write = await callAs(h, key, 'POST', '/v1/profiles/update', [
        {
          identifiers: { custom_id: 'ana' },
          attributes: { plan: 'pro', age: 34, signup: '2026-11-01T10:00:00Z', $language: 'fr' },
          events: [{ name: 'added_to_cart', id: 'e1', attributes: { price: 30 } }],
        },
      ]);
      assert.equal(write.status, 202, JSON.stringify(write.body));
      await callAs(h, key, 'GET', `/v1/profiles/ana?wait_for=${write.body.ingest_id}`);
    });
    after(async () => {
      await h?.stop();
    });

    const cartAbandoners = {
      and: [
        { native: 'language', op: 'eq', value: 'fr' },
        { attribute: 'plan', op: 'in', value: ['pro', 'team'] },
        { event: 'added_to_cart', count: { op: 'gte', value: 2 }, window: { last_days: 7 } },
        { not: { event: 'purchase', window: { last_days: 7 } } },
      ],
    };

    it('saves, lists, reads (by id and name), replaces and deletes a segment; an unseen event is a warning', async () => {
      const created = await callAs(h, key, 'POST', '/v1/segments', { name: 'cart abandoners', segment: cartAbandoners });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.id, /^seg_/);
      assert.deepEqual(created.body.segment, cartAbandoners);
      assert.deepEqual(
        created.body.warnings.map((w: any) => [w.path, w.code]),
        [['/segment/and/3/not/event', 'EVENT_NOT_SEEN']],
        'no purchase has been received yet',
      );
      const byName = await callAs(h, key, 'GET', '/v1/segments/cart%20abandoners');
      assert.equal(byName.status, 200);
      assert.equal(byName.body.id, created.body.id);
      const listed = await callAs(h, key, 'GET', '/v1/segments');
      assert.deepEqual(listed.body.segments.map((s: any) => s.name), ['cart abandoners']);

      const replaced = await callAs(h, key, 'PUT', `/v1/segments/${created.body.id}`, { name: 'cart abandoners', segment: { reachable: 'push', platform: 'ios' } });
      assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
      assert.deepEqual((await callAs(h, key, 'GET', `/v1/segments/${created.body.id}`)).body.segment, { reachable: 'push', platform: 'ios' });

      assert.equal((await callAs(h, key, 'DELETE', `/v1/segments/${created.body.id}`)).status, 204);
      assertRejected(await callAs(h, key, 'GET', `/v1/segments/${created.body.id}`), { status: 404, code: 'SEGMENT_NOT_FOUND' });
    });

    it('bad segments are refused with the path of the offending node, and nothing is saved', async () => {
      const before = (await callAs(h, key, 'GET', '/v1/segments')).body;
      const refuse = async (segment: unknown, path: string, detailCode: string) =>
        assertRejected(await callAs(h, key, 'POST', '/v1/segments', { name: `bad-${uid()}`, segment }), { code: 'VALIDATION_FAILED', path, detailCode });
      await refuse({ attribute: 'plan', op: 'gt', value: 3 }, '/segment/op', 'OPERATOR_TYPE_MISMATCH');
      await refuse({ attribute: 'age', op: 'eq', value: 'old' }, '/segment/value', 'INVALID_TYPE');
      await refuse({ or: [{ audience: 'x' }, { wat: true }] }, '/segment/or/1', 'MALFORMED_SEGMENT');
      await refuse({ event: 'added_to_cart', window: { last_days: 0 } }, '/segment/window/last_days', 'ZERO_WINDOW');
      let deep: unknown = { native: 'language', op: 'exists' };
      for (let i = 0; i < 33; i++) deep = { not: deep };
      await refuse(deep, `/segment${'/not'.repeat(32)}`, 'TOO_DEEP');
      await refuse({ segment: 'no-such-segment' }, '/segment/segment', 'UNKNOWN_SEGMENT');
      assertRejected(await callAs(h, key, 'POST', '/v1/segments', { name: '', segment: { audience: 'x' } }), { path: '/name' });
      assertRejected(await callAs(h, key, 'POST', '/v1/segments', { name: 'x', segment: { audience: 'x' }, colour: 'red' }), { path: '/colour' });
      assertRejected(await callAs(h, key, 'POST', '/v1/segments', { name: 'x' }), { path: '/segment' });
      assert.deepEqual((await callAs(h, key, 'GET', '/v1/segments')).body, before, 'nothing was saved');
    });

    it('segments refer to segments; a cycle is refused, a duplicate name is 409, a segment in use cannot be deleted', async () => {
      const base = await callAs(h, key, 'POST', '/v1/segments', { name: `french-${uid()}`, segment: { native: 'language', op: 'eq', value: 'fr' } });
      assert.equal(base.status, 201);
      const user = await callAs(h, key, 'POST', '/v1/segments', { name: `french-pro-${uid()}`, segment: { and: [{ segment: base.body.name }, { attribute: 'plan', op: 'eq', value: 'pro' }] } });
      assert.equal(user.status, 201, JSON.stringify(user.body));
      // Making the base refer to its user closes a loop.
      assertRejected(await callAs(h, key, 'PUT', `/v1/segments/${base.body.id}`, { name: base.body.name, segment: { not: { segment: user.body.id } } }), {
        path: '/segment/not/segment',
        detailCode: 'SEGMENT_CYCLE',
      });
      assertRejected(await callAs(h, key, 'POST', '/v1/segments', { name: base.body.name, segment: { reachable: 'email' } }), { status: 409, code: 'SEGMENT_EXISTS' });
      assertRejected(await callAs(h, key, 'DELETE', `/v1/segments/${base.body.id}`), { status: 409, code: 'SEGMENT_IN_USE' });
      assert.equal((await callAs(h, key, 'DELETE', `/v1/segments/${user.body.id}`)).status, 204);
      assert.equal((await callAs(h, key, 'DELETE', `/v1/segments/${base.body.id}`)).status, 204);
    });

    it('estimates an inline or saved segment: total and reachability per channel, counted over the applied data', async () => {
      const tag = uid();
      const profiles = [
        { identifiers: { custom_id: `e1-${tag}` }, attributes: { cohort: tag, $language: 'fr', $email_address: `e1-${tag}@example.com`, $email_marketing: 'subscribed' } },
        { identifiers: { custom_id: `e2-${tag}` }, attributes: { cohort: tag, $language: 'fr', $phone_number: '+14155550123', $sms_marketing: 'subscribed' } },
        { identifiers: { custom_id: `e3-${tag}` }, attributes: { cohort: tag, $language: 'de', $email_address: `e3-${tag}@example.com`, $email_marketing: 'unsubscribed' } },
      ];
      assert.equal((await callAs(h, key, 'POST', '/v1/profiles/update', profiles)).status, 202);
      for (const [i, platform] of [['1', 'ios'], ['2', 'android']] as const) {
        const w = await callAs(h, key, 'POST', '/v1/installations', { install_id: `i${i}-${tag}`, custom_id: `e${i}-${tag}`, platform, push_token: platform === 'ios' ? 'ab'.repeat(32) : `fcm-token-${tag}-${'x'.repeat(40)}`, push_enabled: true });
        assert.equal(w.status, 202, JSON.stringify(w.body));
        await callAs(h, key, 'GET', `/v1/profiles/e${i}-${tag}?wait_for=${w.body.ingest_id}`);
      }
      const cohort = { attribute: 'cohort', op: 'eq', value: tag };
      const all = await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: cohort });
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.equal(all.body.total, 3);
      assert.deepEqual(all.body.reachable, { push: { any: 2, ios: 1, android: 1, web: 0 }, email: 1, sms: 1 });
      assert.ok(Date.parse(all.body.evaluated_at) > 0 && all.body.took_ms >= 0);

      const saved = await callAs(h, key, 'POST', '/v1/segments', { name: `fr-${tag}`, segment: { and: [cohort, { native: 'language', op: 'eq', value: 'fr' }] } });
      assert.equal(saved.status, 201, JSON.stringify(saved.body));
      const french = await callAs(h, key, 'POST', '/v1/segments/estimate', { segment_id: `fr-${tag}` });
      assert.equal(french.body.total, 2);
      const notFrench = await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: { and: [cohort, { not: { segment: saved.body.id } }] } });
      assert.equal(notFrench.body.total, 1);
      assert.deepEqual(notFrench.body.reachable, { push: { any: 0, ios: 0, android: 0, web: 0 }, email: 0, sms: 0 });
      const unseen = await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: { and: [cohort, { not: { event: `never-${tag}` } }] } });
      assert.equal(unseen.body.total, 3);
      assert.deepEqual(unseen.body.warnings.map((w: any) => [w.path, w.code]), [['/segment/and/1/not/event', 'EVENT_NOT_SEEN']]);

      // Bad input: a 400 naming the field; an unknown saved segment is 404.
      assertRejected(await callAs(h, key, 'POST', '/v1/segments/estimate', {}), { code: 'VALIDATION_FAILED', path: '' });
      assertRejected(await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: cohort, segment_id: 'x' }), { code: 'VALIDATION_FAILED', path: '' });
      assertRejected(await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: { and: [cohort, { event: 'x', window: { last_days: 0 } }] } }), {
        path: '/segment/and/1/window/last_days',
        detailCode: 'ZERO_WINDOW',
      });
      assertRejected(await callAs(h, key, 'POST', '/v1/segments/estimate', { segment_id: `nope-${tag}` }), { status: 404, code: 'SEGMENT_NOT_FOUND' });

      // I10: the same tree in another project counts that project's profiles only.
      const other = (await h.app.control.createProject(`seg-est-${uid()}`)).secretKey.key;
      const elsewhere = await callAs(h, other, 'POST', '/v1/segments/estimate', { segment: cohort });
      assert.equal(elsewhere.status, 200);
      assert.equal(elsewhere.body.total, 0);
    });

    it('estimates over custom audiences: members by custom_id and by install id, the live set only', async () => {
      const tag = uid();
      const ids = ['a1', 'a2', 'a3'].map((x) => `${x}-${tag}`);
      assert.equal((await callAs(h, key, 'POST', '/v1/profiles/update', ids.map((id) => ({ identifiers: { custom_id: id }, attributes: { cohort: tag } })))).status, 202);
      const inst = await callAs(h, key, 'POST', '/v1/installations', { install_id: `dev-${tag}`, custom_id: ids[2], platform: 'ios', push_token: 'cd'.repeat(32), push_enabled: true });
      await callAs(h, key, 'GET', `/v1/profiles/${ids[2]}?wait_for=${inst.body.ingest_id}`);
      const vip = await callAs(h, key, 'POST', '/v1/audiences', { name: `vip-${tag}` });
      assert.equal(vip.status, 201, JSON.stringify(vip.body));
      const added = await callAs(h, key, 'POST', `/v1/audiences/${vip.body.id}/members`, { add: { custom_ids: [ids[0]!, 'not-a-profile-yet'], install_ids: [`dev-${tag}`] } });
      assert.equal(added.status, 202, JSON.stringify(added.body));
      await callAs(h, key, 'GET', `/v1/audiences/${vip.body.id}/members?wait_for=${added.body.ingest_id}`);
      const cohort = { attribute: 'cohort', op: 'eq', value: tag };
      const inVip = await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: { and: [cohort, { audience: `vip-${tag}` }] } });
      assert.equal(inVip.status, 200, JSON.stringify(inVip.body));
      assert.equal(inVip.body.total, 2, 'a1 by custom_id, a3 by its installation');
      assert.equal(inVip.body.reachable.push.ios, 1);
      const replaced = await callAs(h, key, 'PUT', `/v1/audiences/${vip.body.id}/members`, { custom_ids: [ids[1]!] });
      assert.equal(replaced.status, 202, JSON.stringify(replaced.body));
      await callAs(h, key, 'GET', `/v1/audiences/${vip.body.id}/members?wait_for=${replaced.body.ingest_id}`);
      const after = await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: { and: [cohort, { audience: `vip-${tag}` }] } });
      assert.equal(after.body.total, 1, 'only the replacing set counts');
      assertRejected(await callAs(h, key, 'POST', '/v1/segments/estimate', { segment: { audience: `nope-${tag}` } }), { path: '/segment/audience', detailCode: 'UNKNOWN_AUDIENCE' });
    });

    it('I10: one project never sees or uses another project’s segments', async () => {
      const mine = await callAs(h, key, 'POST', '/v1/segments', { name: `mine-${uid()}`, segment: { reachable: 'email' } });
      const other = (await h.app.control.createProject(`seg-other-${uid()}`)).secretKey.key;
      assertRejected(await callAs(h, other, 'GET', `/v1/segments/${mine.body.id}`), { status: 404 });
      assert.deepEqual((await callAs(h, other, 'GET', '/v1/segments')).body.segments, []);
      assertRejected(await callAs(h, other, 'POST', '/v1/segments', { name: 'x', segment: { segment: mine.body.id } }), { path: '/segment/segment', detailCode: 'UNKNOWN_SEGMENT' });
      assertRejected(await callAs(h, other, 'DELETE', `/v1/segments/${mine.body.id}`), { status: 404 });
      assertRejected(await callAs(h, null, 'GET', '/v1/segments'), { status: 401 });
    });
  });
}
