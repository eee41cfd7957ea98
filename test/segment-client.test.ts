import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Analytics } from '@segment/analytics-node';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Segment-spec ingestion driven by the real, unmodified `@segment/analytics-node` client pointed at
 * Herald (host + `/segment/v1/batch`, the project's secret key as the write key), checked through
 * Herald's own API.
 */

const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

interface Sent {
  /** messageId of each call, by the label the test gave it. */
  messageIds: Record<string, string>;
  /** Delivery errors the client reported through the calls' callbacks. */
  errors: unknown[];
  /** HTTP statuses Herald answered, one per batch the client sent. */
  statuses: number[];
  /** The raw request bodies the client sent, as it sent them. */
  bodies: string[];
}

/** Makes calls with a fresh client, then closes and flushes it; reports what happened on the wire. */
async function sendWithClient(
  h: TestApp,
  calls: (analytics: Analytics, done: (label: string) => (err: unknown, ctx: { event: { messageId?: string } } | undefined) => void) => void,
  options: { writeKey?: string; flushAt?: number } = {},
): Promise<Sent> {
  const analytics = new Analytics({
    writeKey: options.writeKey ?? h.secretKey,
    host: h.url,
    path: '/segment/v1/batch',
    flushAt: options.flushAt ?? 3,
    flushInterval: 100,
    maxRetries: 2,
  });
  const sent: Sent = { messageIds: {}, errors: [], statuses: [], bodies: [] };
  analytics.on('http_request', (request) => sent.bodies.push(request.body));
  analytics.on('http_response', (response) => sent.statuses.push(response.status));
  // Callbacks run in delivery order, not call order: each call gets a labelled one.
  calls(analytics, (label) => (err, ctx) => {
    if (err) sent.errors.push(err);
    if (ctx?.event.messageId) sent.messageIds[label] = ctx.event.messageId;
  });
  await analytics.closeAndFlush({ timeout: 30_000 });
  return sent;
}

function profilePath(customId: string, query = ''): string {
  return `/v1/profiles/${encodeURIComponent(customId)}${query}`;
}

/**
 * The client does not return Herald's ingest_id, so a read-after-write polls until the profile
 * shows what it should (a generous deadline, not a timing assertion).
 */
async function profileWhen(h: TestApp, customId: string, ready: (body: any) => boolean, deadlineMs = 30_000): Promise<any> {
  const deadline = Date.now() + deadlineMs;
  let last: { status: number; body: any } | undefined;
  while (Date.now() < deadline) {
    last = await h.api('GET', profilePath(customId));
    if (last.status === 200 && ready(last.body)) return last.body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`profile ${customId} never became ready; last answer ${last?.status}: ${JSON.stringify(last?.body)}`);
}

async function postSegment(h: TestApp, path: string, body: unknown, writeKey: string | null = h.secretKey): Promise<{ status: number; body: any }> {
  const res = await fetch(h.url + path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      // Segment's HTTP API: Basic auth with the write key as the user name and no password.
      ...(writeKey === null ? {} : { authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` }),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

for (const { backend, skip } of backends) {
  describe(`Segment-spec ingestion with @segment/analytics-node (${backend})`, { skip }, () => {
    let h: TestApp;
    before(async () => {
      h = await startTestApp(backend);
    });
    after(async () => {
      await h?.stop();
    });

    it('delivers identify, track, page and screen calls: traits become attributes, calls become events', async () => {
      const sent = await sendWithClient(h, (analytics, done) => {
        analytics.identify(
          {
            userId: 'seg-user-1',
            anonymousId: 'device-1',
            traits: {
              email: 'ada@example.com',
              phone: '+33 6 12 34 56 78',
              firstName: 'Ada',
              lastName: 'Lovelace',
              address: { city: 'Paris', postalCode: '75001' },
              plan: 'pro',
              logins: 3,
              beta: true,
            },
            context: { timezone: 'Europe/Paris', locale: 'pt-BR' },
          },
          done('identify'),
        );
        analytics.track(
          { userId: 'seg-user-1', event: 'Order Completed', properties: { orderId: 'o-1', totalCents: 1299, lineItems: [{ productId: 'p1', unitPrice: 9.5 }] } },
          done('order-1'),
        );
        analytics.track({ userId: 'seg-user-1', event: 'Order Completed', properties: { orderId: 'o-2', totalCents: 500 } }, done('order-2'));
        analytics.page({ userId: 'seg-user-1', name: 'Pricing', properties: { url: 'https://example.com/pricing', pageTitle: 'Pricing' } }, done('page'));
        analytics.screen({ userId: 'seg-user-1', name: 'Home' }, done('screen'));
        // group and alias are accepted and ignored: the client must see them delivered too.
        analytics.group({ userId: 'seg-user-1', groupId: 'acme', traits: { name: 'Acme' } }, done('group'));
        analytics.alias({ userId: 'seg-user-1', previousId: 'device-1' }, done('alias'));
      });
      assert.deepEqual(sent.errors, []);
      assert.deepEqual(Object.keys(sent.messageIds).sort(), ['alias', 'group', 'identify', 'order-1', 'order-2', 'page', 'screen']);
      assert.ok(sent.statuses.length >= 2, `flushAt 3 splits 7 calls into batches (${sent.statuses.join(',')})`);
      assert.ok(
        sent.statuses.every((s) => s === 200),
        `statuses ${sent.statuses.join(',')}`,
      );
      assert.ok(sent.bodies.every((b) => b.includes('"messageId"')));

      const profile = await profileWhen(h, 'seg-user-1', (p) => Object.keys(p.event_counts).length === 3 && p.attributes.first_name !== undefined);
      assert.deepEqual(profile.attributes, {
        $email_address: 'ada@example.com',
        $phone_number: '+33612345678',
        $timezone: 'Europe/Paris',
        $language: 'pt-BR',
        first_name: 'Ada',
        last_name: 'Lovelace',
        address_city: 'Paris',
        address_postal_code: '75001',
        plan: 'pro',
        logins: 3,
        beta: true,
      });
      assert.deepEqual(profile.event_counts, { 'Order Completed': 2, page_viewed: 1, screen_viewed: 1 });
      assert.equal(profile.events.length, 4);

      // messageId is the event id; property names are snake_cased, their structure kept.
      const { 'order-1': orderOneId, 'order-2': orderTwoId, page: pageId, screen: screenId } = sent.messageIds;
      const byId = new Map<string, any>(profile.events.map((e: { id: string }) => [e.id, e]));
      assert.deepEqual([...byId.keys()].sort(), [orderOneId, orderTwoId, pageId, screenId].sort());
      assert.equal(byId.get(orderOneId!).name, 'Order Completed');
      assert.deepEqual(byId.get(orderOneId!).attributes, { order_id: 'o-1', total_cents: 1299, line_items: [{ product_id: 'p1', unit_price: 9.5 }] });
      assert.deepEqual(byId.get(orderTwoId!).attributes, { order_id: 'o-2', total_cents: 500 });
      assert.equal(byId.get(pageId!).name, 'page_viewed');
      assert.deepEqual(byId.get(pageId!).attributes, { url: 'https://example.com/pricing', page_title: 'Pricing', name: 'Pricing' });
      assert.equal(byId.get(screenId!).name, 'screen_viewed');
      assert.equal(byId.get(screenId!).attributes.name, 'Home');

      // userId wins over anonymousId: nothing landed on the anonymous profile.
      assert.equal((await h.api('GET', profilePath('anonymous:device-1'))).status, 404);
    });

    it('puts calls with only an anonymousId on the profile anonymous:<anonymousId>', async () => {
      const sent = await sendWithClient(h, (analytics, done) => {
        analytics.identify({ anonymousId: 'anon-7', traits: { favoriteColor: 'teal' } }, done('identify'));
        analytics.track({ anonymousId: 'anon-7', event: 'Viewed Landing', properties: { utmSource: 'newsletter' } }, done('track'));
      });
      assert.deepEqual(sent.errors, []);
      const profile = await profileWhen(h, 'anonymous:anon-7', (p) => p.event_counts['Viewed Landing'] === 1 && p.attributes.favorite_color !== undefined);
      assert.equal(profile.custom_id, 'anonymous:anon-7');
      assert.deepEqual(profile.attributes, { favorite_color: 'teal' });
      assert.equal(profile.events[0].id, sent.messageIds.track);
      assert.deepEqual(profile.events[0].attributes, { utm_source: 'newsletter' });
    });

    it('keeps an invalid email or phone trait as a custom attribute instead of failing the batch', async () => {
      const sent = await sendWithClient(h, (analytics, done) => {
        analytics.identify({ userId: 'seg-lenient', traits: { email: 'not-an-email', phone: '12', name: 'Lenient' } }, done('identify'));
      });
      assert.deepEqual(sent.errors, []);
      const profile = await profileWhen(h, 'seg-lenient', (p) => p.attributes.name === 'Lenient');
      assert.deepEqual(profile.attributes, { email: 'not-an-email', phone: '12', name: 'Lenient' });
    });

    it('stores an event once when the same messageId is sent again (client retry, explicit messageId)', async () => {
      const first = await sendWithClient(
        h,
        (analytics, done) => {
          analytics.track({ userId: 'seg-dedupe', event: 'Signed Up', properties: { plan: 'free' } }, done('generated'));
          analytics.track({ userId: 'seg-dedupe', event: 'Signed Up', messageId: 'fixed-message-1' }, done('fixed'));
        },
        { flushAt: 2 },
      );
      assert.deepEqual(first.errors, []);
      assert.equal(first.bodies.length, 1);
      await profileWhen(h, 'seg-dedupe', (p) => p.event_counts['Signed Up'] === 2);

      // A retry of the very same batch, byte for byte, as the client sends it after a lost answer.
      const retry = await postSegment(h, '/segment/v1/batch', first.bodies[0]);
      assert.equal(retry.status, 200, JSON.stringify(retry.body));
      assert.equal(retry.body.success, true);
      // The same messageId again, from a new client, and twice within one batch.
      const again = await sendWithClient(h, (analytics, done) => {
        analytics.track({ userId: 'seg-dedupe', event: 'Signed Up', messageId: 'fixed-message-1' }, done('fixed'));
      });
      assert.deepEqual(again.errors, []);
      const twice = await postSegment(h, '/segment/v1/batch', {
        batch: [
          { type: 'track', userId: 'seg-dedupe', event: 'Signed Up', messageId: 'fixed-message-2' },
          { type: 'track', userId: 'seg-dedupe', event: 'Signed Up', messageId: 'fixed-message-2' },
        ],
      });
      assert.equal(twice.status, 200, JSON.stringify(twice.body));

      const read = await h.api('GET', profilePath('seg-dedupe', `?wait_for=${twice.body.ingest_id}`));
      assert.equal(read.status, 200);
      assert.equal(read.body.consistency.applied, true);
      assert.deepEqual(read.body.event_counts, { 'Signed Up': 3 });
      assert.deepEqual(read.body.events.map((e: { id: string }) => e.id).sort(), [first.messageIds.generated, 'fixed-message-1', 'fixed-message-2'].sort());
    });

    it('serves single identify and track calls at /segment/v1/identify and /segment/v1/track', async () => {
      const identify = await postSegment(h, '/segment/v1/identify', { userId: 'seg-single', traits: { firstName: 'Grace' } });
      assert.equal(identify.status, 200, JSON.stringify(identify.body));
      assert.equal(identify.body.accepted, 1);
      const track = await postSegment(h, '/segment/v1/track', {
        userId: 'seg-single',
        event: 'Logged In',
        messageId: 'single-1',
        properties: { viaSso: true },
      });
      assert.equal(track.status, 200, JSON.stringify(track.body));
      const read = await h.api('GET', profilePath('seg-single', `?wait_for=${track.body.ingest_id}`));
      assert.deepEqual(read.body.attributes, { first_name: 'Grace' });
      assert.deepEqual(read.body.event_counts, { 'Logged In': 1 });
      assert.equal(read.body.events[0].id, 'single-1');
      assert.deepEqual(read.body.events[0].attributes, { via_sso: true });
    });

    it('refuses a wrong or missing write key with 401, and the client reports the failure', async () => {
      const message = { type: 'track', userId: 'seg-intruder', event: 'Break In' };
      for (const path of ['/segment/v1/batch', '/segment/v1/track']) {
        const body = path.endsWith('batch') ? { batch: [message] } : message;
        const wrong = await postSegment(h, path, body, `sk_${'x'.repeat(40)}`);
        assert.equal(wrong.status, 401, `${path}: ${JSON.stringify(wrong.body)}`);
        assert.equal(wrong.body.error.code, 'UNAUTHORIZED');
        assert.equal((await postSegment(h, path, body, null)).status, 401);
      }
      // The public key is for apps; Segment ingestion takes the secret key only (a valid key without the right: 403).
      const publicKey = await postSegment(h, '/segment/v1/batch', { batch: [message] }, h.publicKey);
      assert.equal(publicKey.status, 403, JSON.stringify(publicKey.body));
      assert.equal(publicKey.body.error.code, 'FORBIDDEN');

      const sent = await sendWithClient(h, (analytics, done) => analytics.track({ userId: 'seg-intruder', event: 'Break In' }, done('track')), {
        writeKey: 'sk_wrong',
      });
      assert.deepEqual(sent.statuses, [401]);
      assert.equal(sent.errors.length, 1);

      const marker = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'seg-intruder' }, attributes: { marker: true } }]);
      const read = await h.api('GET', profilePath('seg-intruder', `?wait_for=${marker.body.ingest_id}`));
      assert.deepEqual(read.body.event_counts, {});
    });

    it('rejects an invalid message with 400 VALIDATION_FAILED naming its index, and accepts nothing of the batch (I9)', async () => {
      const noEvent = await postSegment(h, '/segment/v1/batch', {
        batch: [
          { type: 'identify', userId: 'seg-rejected', traits: { plan: 'should-not-land' } },
          { type: 'group', userId: 'seg-rejected', groupId: 'g1' },
          { type: 'track', userId: 'seg-rejected' },
          { type: 'track', userId: 'seg-rejected', event: 'Fine' },
        ],
      });
      assert.equal(noEvent.status, 400, JSON.stringify(noEvent.body));
      assert.equal(noEvent.body.error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        noEvent.body.error.details.map((d: { index: number; path: string }) => [d.index, d.path]),
        [[2, '/event']],
      );
      assert.equal(typeof noEvent.body.error.details[0].message, 'string');

      // A problem Herald's own validation finds is reported against the caller's index too, even
      // when ignored calls (alias) come before it.
      const old = new Date(Date.now() - 40 * 24 * 3600 * 1000).toISOString();
      const tooOld = await postSegment(h, '/segment/v1/batch', {
        batch: [
          { type: 'alias', userId: 'seg-rejected', previousId: 'x' },
          { type: 'track', userId: 'seg-rejected', event: 'Fine' },
          { type: 'track', userId: 'seg-rejected', event: 'Ancient', timestamp: old },
        ],
      });
      assert.equal(tooOld.status, 400, JSON.stringify(tooOld.body));
      assert.equal(tooOld.body.error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        tooOld.body.error.details.map((d: { index: number }) => d.index),
        [2],
      );

      const noUser = await postSegment(h, '/segment/v1/track', { event: 'Orphan' });
      assert.equal(noUser.status, 400);
      assert.deepEqual(
        noUser.body.error.details.map((d: { index: number; path: string }) => [d.index, d.path]),
        [[0, '/userId']],
      );
      const unknownType = await postSegment(h, '/segment/v1/batch', { batch: [{ type: 'teleport', userId: 'seg-rejected' }] });
      assert.equal(unknownType.status, 400);
      assert.equal(unknownType.body.error.details[0].index, 0);
      const notABatch = await postSegment(h, '/segment/v1/batch', { messages: [] });
      assert.equal(notABatch.status, 400);
      const malformed = await postSegment(h, '/segment/v1/batch', '{"batch": [');
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.code, 'MALFORMED_JSON');

      // The client sees the 400 as a failed delivery, not a success.
      const sent = await sendWithClient(h, (analytics, done) =>
        analytics.track({ userId: 'seg-rejected', event: 'Too Old', timestamp: new Date(Date.now() - 40 * 24 * 3600 * 1000) }, done('track')),
      );
      assert.deepEqual(sent.statuses, [400]);
      assert.equal(sent.errors.length, 1);

      // Nothing of the rejected batches was accepted.
      const marker = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'seg-rejected' }, attributes: { marker: true } }]);
      const read = await h.api('GET', profilePath('seg-rejected', `?wait_for=${marker.body.ingest_id}`));
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.attributes, { marker: true });
      assert.deepEqual(read.body.event_counts, {});
    });
  });
}
