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
