import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

for (const { backend, skip } of backends) {
  describe(`ingestion API end to end (${backend})`, { skip }, () => {
    let h: TestApp;
    before(async () => {
      h = await startTestApp(backend);
    });
    after(async () => {
      await h?.stop();
    });

    it('ingests a profile with attributes and events and reads it back (read-after-write)', async () => {
      const write = await h.api('POST', '/v1/profiles/update', [
        {
          identifiers: { custom_id: 'user-1' },
          attributes: {
            $email_address: 'ada@example.com',
            $email_marketing: 'subscribed',
            $phone_number: '+33 6 12 34 56 78',
            $language: 'fr',
            $region: 'fr',
            $timezone: 'Europe/Paris',
            plan: 'pro',
            age: 36,
            vip: true,
            signed_up: '2026-11-01T10:00:00+02:00',
            homepage: 'https://example.com/ada',
            tags: ['a', 'b'],
          },
          events: [{ name: 'added_to_cart', id: 'evt-1', attributes: { sku: 'A1', items: [{ qty: 2 }] } }],
        },
      ]);
      assert.equal(write.status, 202);
      assert.equal(write.body.accepted, 1);
      assert.match(write.body.ingest_id, /^ing_c1_\d+$/);

      const read = await h.api('GET', `/v1/profiles/user-1?wait_for=${write.body.ingest_id}`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.consistency, { wait_for: write.body.ingest_id, applied: true });
      assert.deepEqual(read.body.attributes, {
        $email_address: 'ada@example.com',
        $email_marketing: 'subscribed',
        $phone_number: '+33612345678',
        $language: 'fr',
        $region: 'FR',
        $timezone: 'Europe/Paris',
        plan: 'pro',
        age: 36,
        vip: true,
        signed_up: '2026-11-01T08:00:00.000Z',
        homepage: 'https://example.com/ada',
        tags: ['a', 'b'],
      });
      assert.equal(read.body.events.length, 1);
      assert.equal(read.body.events[0].name, 'added_to_cart');
      assert.equal(read.body.events[0].id, 'evt-1');
      assert.deepEqual(read.body.events[0].attributes, { sku: 'A1', items: [{ qty: 2 }] });
      assert.deepEqual(read.body.event_counts, { added_to_cart: 1 });
    });

    it('applies $add/$remove on arrays, null deletes, and dedupes events by client id', async () => {
      const first = await h.api('POST', '/v1/profiles/update', [
        { identifiers: { custom_id: 'user-2' }, attributes: { tags: ['x', 'y'], plan: 'free' }, events: [{ name: 'open', id: 'o-1' }] },
      ]);
      assert.equal(first.status, 202);
      const second = await h.api('POST', '/v1/profiles/update', [
        {
          identifiers: { custom_id: 'user-2' },
          attributes: { tags: { $add: ['z', 'x'], $remove: ['y'] }, plan: null },
          events: [{ name: 'open', id: 'o-1' }, { name: 'open', id: 'o-2' }, { name: 'open' }],
        },
      ]);
      const read = await h.api('GET', `/v1/profiles/user-2?wait_for=${second.body.ingest_id}`);
      assert.deepEqual(read.body.attributes, { tags: ['x', 'z'] });
      assert.deepEqual(read.body.event_counts, { open: 3 });
      assert.equal(read.body.events.length, 3);
    });

    it('registers installations with a public key and links them to the profile', async () => {
      const token = 'a'.repeat(64);
      const res = await h.api(
        'POST',
        '/v1/installations',
        { install_id: 'ios-1', custom_id: 'user-3', platform: 'ios', push_token: token, push_enabled: true, app_version: '2.1.0' },
        { authorization: `Bearer ${h.publicKey}` },
      );
      assert.equal(res.status, 202);
      const web = await h.api('POST', '/v1/installations', {
        install_id: 'web-1',
        custom_id: 'user-3',
        platform: 'web',
        web_push: {
          endpoint: 'https://push.example.com/send/abc',
          keys: { p256dh: Buffer.alloc(65, 4).toString('base64url'), auth: Buffer.alloc(16, 1).toString('base64url') },
        },
        push_enabled: true,
      });
      assert.equal(web.status, 202);
      const read = await h.api('GET', `/v1/profiles/user-3?wait_for=${web.body.ingest_id}`);
      assert.equal(read.status, 200);
      const installs = read.body.installations.map((i: { install_id: string; platform: string; push_enabled: boolean }) => [
        i.install_id,
        i.platform,
        i.push_enabled,
      ]);
      assert.deepEqual(installs.sort(), [
        ['ios-1', 'ios', true],
        ['web-1', 'web', true],
      ]);
      const publicRead = await h.api('GET', '/v1/profiles/user-3', undefined, { authorization: `Bearer ${h.publicKey}` });
      assert.equal(publicRead.status, 403);
      assert.equal(publicRead.body.error.code, 'FORBIDDEN');
    });

    it('erases a profile with its installations and events, ordered through the log', async () => {
      await h.api('POST', '/v1/installations', { install_id: 'and-9', custom_id: 'user-9', platform: 'android', push_token: 'f'.repeat(40) });
      await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'user-9' }, events: [{ name: 'x' }] }]);
      const del = await h.api('DELETE', '/v1/profiles/user-9');
      assert.equal(del.status, 202);
      const gone = await h.api('GET', `/v1/profiles/user-9?wait_for=${del.body.ingest_id}`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error.code, 'PROFILE_NOT_FOUND');
      const again = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'user-9' }, attributes: { back: true } }]);
      const reborn = await h.api('GET', `/v1/profiles/user-9?wait_for=${again.body.ingest_id}`);
      assert.deepEqual(reborn.body.attributes, { back: true });
      assert.deepEqual(reborn.body.installations, []);
      assert.deepEqual(reborn.body.event_counts, {});
    });

    it('pages through events most recent first', async () => {
      const now = Date.now();
      const events = Array.from({ length: 25 }, (_, i) => ({ name: 'tick', id: `t-${i}`, time: new Date(now - i * 1000).toISOString() }));
      const w = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'pager' }, events }]);
      await h.api('GET', `/v1/profiles/pager?wait_for=${w.body.ingest_id}`);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: any } = await h.api(
          'GET',
          `/v1/profiles/pager/events?limit=10${cursor ? `&cursor=${cursor}` : ''}`,
        );
        assert.equal(page.status, 200);
        seen.push(...page.body.events.map((e: { id: string }) => e.id));
        cursor = page.body.next_cursor;
      } while (cursor);
      assert.deepEqual(seen, events.map((e) => e.id));
    });

    it('keeps projects apart: a key of one project never reads another (I10)', async () => {
      const other = await h.app.control.createProject(`other-${backend}`);
      const w = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'shared-id' }, attributes: { owner: 'demo' } }]);
      const mine = await h.api('GET', `/v1/profiles/shared-id?wait_for=${w.body.ingest_id}`);
      assert.equal(mine.status, 200);
      const theirs = await h.api('GET', '/v1/profiles/shared-id', undefined, { authorization: `Bearer ${other.secretKey.key}` });
      assert.equal(theirs.status, 404);
      const w2 = await h.api(
        'POST',
        '/v1/profiles/update',
        [{ identifiers: { custom_id: 'shared-id' }, attributes: { owner: 'other' } }],
        { authorization: `Bearer ${other.secretKey.key}` },
      );
      assert.equal(w2.status, 202);
      const theirsNow = await h.api('GET', `/v1/profiles/shared-id?wait_for=${w2.body.ingest_id}`, undefined, {
        authorization: `Bearer ${other.secretKey.key}`,
      });
      assert.deepEqual(theirsNow.body.attributes, { owner: 'other' });
      const mineStill = await h.api('GET', '/v1/profiles/shared-id');
      assert.deepEqual(mineStill.body.attributes, { owner: 'demo' });
    });

    it('answers a repeated Idempotency-Key with the first response and a changed body with 409', async () => {
      const body = [{ identifiers: { custom_id: 'idem' }, events: [{ name: 'paid' }] }];
      const first = await h.api('POST', '/v1/profiles/update', body, { 'idempotency-key': 'k-1' });
      const again = await h.api('POST', '/v1/profiles/update', body, { 'idempotency-key': 'k-1' });
      assert.equal(first.status, 202);
      assert.equal(again.status, 202);
      assert.deepEqual(again.body, first.body);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      const changed = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'idem' } }], { 'idempotency-key': 'k-1' });
      assert.equal(changed.status, 409);
      assert.equal(changed.body.error.code, 'IDEMPOTENCY_CONFLICT');
      const read = await h.api('GET', `/v1/profiles/idem?wait_for=${first.body.ingest_id}`);
      assert.deepEqual(read.body.event_counts, { paid: 1 });
    });

    it('serves health, readiness, OpenAPI and the docs page', async () => {
      const health = await h.api('GET', '/v1/health');
      assert.equal(health.status, 200);
      const ready = await h.api('GET', '/v1/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.cells[0].id, 'c1');
      assert.equal(ready.body.cells[0].log.ok, true);
      const spec = await h.api('GET', '/openapi.json');
      assert.equal(spec.status, 200);
      assert.equal(spec.body.openapi, '3.1.0');
      assert.ok(spec.body.paths['/v1/profiles/update'].post.requestBody);
      assert.equal(spec.body.paths['/v1/profiles/update'].post.requestBody.content['application/json'].schema.maxItems, 1000);
      const docs = await fetch(`${h.url}/docs`);
      assert.equal(docs.status, 200);
      assert.match(await docs.text(), /swagger/i);
    });
  });
}
