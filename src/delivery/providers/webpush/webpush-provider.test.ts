import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import webpush from 'web-push';
import { ManualClock, systemClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import type { WebPushSubscription } from '../../../profiles/profile-model.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import { webpushSandbox } from '../../../sandbox/webpush/webpush-sandbox.ts';
import {
  createSandboxSubscription,
  webpushSandboxCredentials,
} from '../../../sandbox/webpush/webpush-sandbox-credentials.ts';
import type { DeliveryRequest, PushContent, SendOutcome } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { webpushProvider, type WebPushCredentials } from './webpush-provider.ts';
import { MAX_PLAINTEXT_BYTES, pushPayload } from './webpush-request.ts';

function request(
  subscription: WebPushSubscription,
  content: PushContent,
  overrides: Partial<DeliveryRequest> = {},
): DeliveryRequest {
  return {
    messageId: randomUUID(),
    projectId: 'prj_test',
    channel: 'push',
    to: subscription.endpoint,
    platform: 'web',
    webPush: subscription,
    content,
    category: 'transactional',
    expiresAt: null,
    attempt: 1,
    ...overrides,
  };
}

const failure = (outcome: SendOutcome) =>
  outcome.kind === 'failed' ? outcome : assert.fail(`expected a failure, got ${JSON.stringify(outcome)}`);

describe('webpush provider against the sandbox push service', () => {
  let sandbox: LocalSandbox;
  let context: ProviderContext;
  let credentials: WebPushCredentials;
  // Fixed "now" for the provider, so TTL is exact; the stand-in checks VAPID against real time.
  const clock = new ManualClock(Date.now());
  const clients: ProviderClient[] = [];

  const client = (
    creds: WebPushCredentials = credentials,
    ctx: ProviderContext = context,
  ): ProviderClient => {
    const c = webpushProvider.create(creds, ctx);
    clients.push(c);
    return c;
  };
  const subscribe = (applicationServerKey?: string) =>
    createSandboxSubscription(
      sandbox.endpoints.webpush!,
      applicationServerKey ? { applicationServerKey } : {},
    );
  const send = (c: ProviderClient, req: DeliveryRequest) => c.send(req, AbortSignal.timeout(5000));
  const received = (to: string) => sandbox.messages({ kind: 'webpush', to });

  before(async () => {
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [webpushSandbox] });
    context = { clock, logger: silentLogger, sandbox: sandbox.endpoints, allowPrivateTargets: false };
    const checked = webpushProvider.validate(await webpushSandboxCredentials(sandbox));
    assert.ok(checked.ok, JSON.stringify(checked));
    credentials = checked.credentials;
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox.close();
  });

  it('delivers a payload the browser decrypts to exactly the JSON sent, with TTL, Urgency and Topic', async () => {
    const subscription = await subscribe(credentials.vapid_public_key);
    const content: PushContent = {
      title: 'Your order shipped',
      body: 'Arrives Thursday — 2 parcels',
      deeplink: 'https://shop.example/orders/42',
      data: { order: 42, gift: false, note: null },
      priority: 'high',
      collapseKey: 'order-42',
    };
    const req = request(subscription, content, { expiresAt: clock.now() + 3_600_000 });
    const outcome = await send(client(), req);
    assert.equal(outcome.kind, 'sent');
    assert.match(
      (outcome.kind === 'sent' && outcome.providerMessageId) || '',
      /\/messages\/[0-9a-f-]{36}$/,
      'the Location header is the provider id',
    );
    const [message, ...others] = await received(subscription.endpoint);
    assert.equal(others.length, 0, 'delivered once');
    assert.deepEqual(message?.body, {
      message_id: req.messageId,
      title: 'Your order shipped',
      body: 'Arrives Thursday — 2 parcels',
      deeplink: 'https://shop.example/orders/42',
      data: { order: 42, gift: false, note: null },
    });
    assert.equal(message?.channel, 'push');
    assert.equal(message?.headers.ttl, '3600');
    assert.equal(message?.headers.urgency, 'high');
    assert.equal(message?.headers.topic, 'order-42');
    assert.equal(message?.headers['content-encoding'], 'aes128gcm');
    assert.equal(message?.headers.authorization, `vapid t=…, k=${credentials.vapid_public_key}`);
  });

  it('defaults to a 4-week TTL and normal urgency, and turns an unsafe collapse key into a stable Topic', async () => {
    const subscription = await subscribe();
    const c = client();
    const content: PushContent = { title: 'Spring sale', collapseKey: 'promo: spring sale! (EU)' };
    assert.equal((await send(c, request(subscription, content))).kind, 'sent');
    assert.equal((await send(c, request(subscription, content))).kind, 'sent');
    assert.equal((await send(c, request(subscription, { title: 'no topic' }))).kind, 'sent');
    const [plain, second, first] = await received(subscription.endpoint);
    assert.equal(first?.headers.ttl, String(28 * 24 * 3600));
    assert.equal(first?.headers.urgency, 'normal');
    assert.match(first?.headers.topic ?? '', /^[A-Za-z0-9_-]{32}$/);
    assert.equal(second?.headers.topic, first?.headers.topic, 'the same collapse key gives the same Topic');
    assert.equal(plain?.headers.topic, undefined);
  });

  it('reports a refused VAPID signature as a permanent failure and delivers nothing', async () => {
    const other = webpush.generateVAPIDKeys();
    // The browser subscribed with our key; a different application server key is refused (RFC 8292 §4).
    const restricted = await subscribe(credentials.vapid_public_key);
    const stranger = client({
      vapid_public_key: other.publicKey,
      vapid_private_key: other.privateKey,
      subject: 'mailto:ops@example.net',
    });
    const refused = failure(await send(stranger, request(restricted, { title: 'hi' })));
    assert.deepEqual([refused.retryable, refused.code], [false, 'HTTP_403']);
    assert.match(refused.message, /VAPID/);
    assert.match(refused.message, /applicationServerKey/);
    // A public key that is not the signer's: the JWT does not verify with k.
    const open = await subscribe();
    const mismatched = client({ ...credentials, vapid_public_key: other.publicKey });
    const bad = failure(await send(mismatched, request(open, { title: 'hi' })));
    assert.deepEqual([bad.retryable, bad.code], [false, 'HTTP_403']);
    assert.match(bad.message, /signature/);
    assert.equal((await received(restricted.endpoint)).length + (await received(open.endpoint)).length, 0);
  });

  it('maps 404 (unknown subscription) and 410 (unsubscribed, or a rule) to remove-subscription', async () => {
    const c = client();
    const subscription = await subscribe();
    const unknown = { ...subscription, endpoint: `${sandbox.endpoints.webpush}/push/neverSubscribed0` };
    const notFound = await send(c, request(unknown, { title: 'hi' }));
    assert.deepEqual(
      [
        notFound.kind,
        notFound.kind === 'recipient-invalid' && notFound.effect,
        notFound.kind === 'recipient-invalid' && notFound.code,
      ],
      ['recipient-invalid', 'remove-subscription', 'HTTP_404'],
    );
    const gone = await subscribe();
    const deleted = await fetch(
      `${sandbox.endpoints.webpush}/subscriptions/${gone.endpoint.split('/').pop()}`,
      { method: 'DELETE' },
    );
    assert.equal(deleted.status, 204);
    const unsubscribed = await send(c, request(gone, { title: 'hi' }));
    assert.equal(unsubscribed.kind === 'recipient-invalid' && unsubscribed.effect, 'remove-subscription');
    assert.equal(unsubscribed.kind === 'recipient-invalid' && unsubscribed.code, 'HTTP_410');
    await sandbox.addBehavior({
      kind: 'webpush',
      to: subscription.endpoint,
      status: 410,
      reason: 'push subscription has expired',
      times: 1,
    });
    const expired = await send(c, request(subscription, { title: 'hi' }));
    assert.equal(expired.kind === 'recipient-invalid' && expired.effect, 'remove-subscription');
    assert.match(
      expired.kind === 'recipient-invalid' ? expired.message : '',
      /push subscription has expired/,
    );
    assert.equal(
      (await send(c, request(subscription, { title: 'hi' }))).kind,
      'sent',
      'the rule retired after one use',
    );
  });

  it('retries 429 after its Retry-After, and 500 and 503', async () => {
    const c = client();
    const subscription = await subscribe();
    await sandbox.addBehavior({
      kind: 'webpush',
      to: subscription.endpoint,
      status: 429,
      retryAfterSeconds: 7,
      times: 1,
    });
    const limited = failure(await send(c, request(subscription, { title: 'hi' })));
    assert.deepEqual([limited.retryable, limited.code, limited.retryAfterMs], [true, 'HTTP_429', 7000]);
    await sandbox.addBehavior({ kind: 'webpush', to: subscription.endpoint, status: 500, times: 1 });
    const broken = failure(await send(c, request(subscription, { title: 'hi' })));
    assert.deepEqual([broken.retryable, broken.code, broken.retryAfterMs], [true, 'HTTP_500', undefined]);
    await sandbox.addBehavior({
      kind: 'webpush',
      to: subscription.endpoint,
      status: 503,
      retryAfterSeconds: 2,
      times: 1,
    });
    const unavailable = failure(await send(c, request(subscription, { title: 'hi' })));
    assert.deepEqual([unavailable.retryable, unavailable.retryAfterMs], [true, 2000]);
    assert.equal(
      (await received(subscription.endpoint)).length,
      0,
      'nothing was delivered while the service refused',
    );
  });

  it('fails a payload over the limit without a request, and delivers one exactly at the limit', async () => {
    const c = client();
    const subscription = await subscribe();
    const sized = (bytes: number): DeliveryRequest => {
      const req = request(subscription, { title: 't', data: { pad: '' } });
      const overhead = Buffer.byteLength(pushPayload(req));
      return { ...req, content: { title: 't', data: { pad: 'a'.repeat(bytes - overhead) } } };
    };
    const tooBig = sized(4200);
    const refused = failure(await send(c, tooBig));
    assert.deepEqual([refused.retryable, refused.code], [false, 'PAYLOAD_TOO_LARGE']);
    assert.equal((await received(subscription.endpoint)).length, 0, 'no request reached the push service');
    const atLimit = sized(MAX_PLAINTEXT_BYTES);
    assert.equal(Buffer.byteLength(pushPayload(atLimit)), MAX_PLAINTEXT_BYTES);
    assert.equal(
      (await send(c, atLimit)).kind,
      'sent',
      'the largest allowed payload fits the 4096-byte body a push service must take',
    );
    const [message] = await received(subscription.endpoint);
    assert.equal((message?.body as { message_id: string }).message_id, atLimit.messageId);
  });

  it('gives up on a push service that hangs, and retries a refused connection', async () => {
    const subscription = await subscribe();
    await sandbox.addBehavior({ kind: 'webpush', to: subscription.endpoint, hang: true, times: 1 });
    const hung = failure(
      await client().send(request(subscription, { title: 'hi' }), AbortSignal.timeout(300)),
    );
    assert.deepEqual([hung.retryable, hung.code], [true, 'TIMEOUT']);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dead = { ...subscription, endpoint: `http://127.0.0.1:${port}/push/abc` };
    const refused = failure(
      await send(
        client(credentials, { ...context, allowPrivateTargets: true }),
        request(dead, { title: 'hi' }),
      ),
    );
    assert.deepEqual([refused.retryable, refused.code], [true, 'ECONNREFUSED']);
  });

  it('refuses endpoints that are not public https, and subscriptions whose keys cannot be used', async () => {
    const c = client();
    const subscription = await subscribe();
    for (const endpoint of [
      'http://push.example.net/push/abc',
      'https://127.0.0.1:9/push/abc',
      'https://[::1]:9/push/abc',
    ]) {
      const outcome = failure(await send(c, request({ ...subscription, endpoint }, { title: 'hi' })));
      assert.deepEqual([outcome.retryable, outcome.code], [false, 'INSECURE_ENDPOINT'], endpoint);
    }
    const offCurve = Buffer.alloc(65, 1);
    offCurve[0] = 0x04;
    for (const keys of [
      { ...subscription.keys, p256dh: offCurve.toString('base64url') },
      { ...subscription.keys, auth: Buffer.alloc(8).toString('base64url') },
    ]) {
      const outcome = await send(c, request({ ...subscription, keys }, { title: 'hi' }));
      assert.equal(outcome.kind === 'recipient-invalid' && outcome.code, 'INVALID_SUBSCRIPTION');
      assert.equal(outcome.kind === 'recipient-invalid' && outcome.effect, 'remove-subscription');
    }
  });
});
