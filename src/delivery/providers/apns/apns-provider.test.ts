import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ManualClock, systemClock, type Clock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import { createApnsSandbox } from '../../../sandbox/apns/apns-sandbox.ts';
import { apnsSandboxCredentials, SANDBOX_APNS_TOPIC } from '../../../sandbox/apns/apns-sandbox-credentials.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import type { DeliveryRequest, PushContent } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { apnsProvider, type ApnsCredentials } from './apns-provider.ts';

const deviceToken = (): string => randomBytes(32).toString('hex');

function push(to: string, content: PushContent = { title: 'Hello', body: 'World' }, expiresAt: number | null = null): DeliveryRequest {
  return { messageId: randomUUID(), projectId: 'prj_test', channel: 'push', platform: 'ios', to, content, category: 'transactional', expiresAt, attempt: 1 };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const wait = () => AbortSignal.timeout(5000);

/** A sandbox with the APNs stand-in, and clients wired to it with sandbox credentials. */
async function rig(sandboxClock: Clock = systemClock) {
  const sandbox: LocalSandbox = await startSandbox({ clock: sandboxClock, logger: silentLogger, services: [createApnsSandbox()] });
  const clients: ProviderClient[] = [];
  const client = (credentials: ApnsCredentials, clock: Clock = systemClock): ProviderClient => {
    const checked = apnsProvider.validate(credentials);
    assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.problems));
    const context: ProviderContext = { clock, logger: silentLogger, sandbox: sandbox.endpoints, allowPrivateTargets: false };
    const c = apnsProvider.create(checked.credentials, context);
    clients.push(c);
    return c;
  };
  const close = async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox.close();
  };
  return { sandbox, client, close };
}

describe('APNs provider against the sandbox stand-in', () => {
  let r: Awaited<ReturnType<typeof rig>>;
  let client: ProviderClient;
  before(async () => {
    r = await rig();
    client = r.client(await apnsSandboxCredentials(r.sandbox));
  });
  after(() => r.close());

  it('delivers an alert: the stand-in verifies the token and records the payload, apns-id is the message id', async () => {
    const to = deviceToken();
    const expiresAt = Date.UTC(2030, 0, 1, 12, 0, 0, 500);
    const request = push(
      to,
      { title: 'Your order', body: 'has shipped', deeplink: 'shop://orders/o-1', data: { orderId: 'o-1', items: 2 }, badge: 3, sound: 'default', collapseKey: 'order-o-1' },
      expiresAt,
    );
    const outcome = await client.send(request, wait());
    assert.equal(outcome.kind, 'sent');
    assert.match((outcome.kind === 'sent' && outcome.providerMessageId) || '', UUID);
    const [received] = await r.sandbox.messages({ kind: 'apns', to });
    assert.ok(received, 'the stand-in recorded the notification');
    assert.equal(received.channel, 'push');
    assert.equal(received.headers['apns-id'], request.messageId);
    assert.equal(received.headers['apns-topic'], SANDBOX_APNS_TOPIC);
    assert.equal(received.headers['apns-push-type'], 'alert');
    assert.equal(received.headers['apns-priority'], '10');
    assert.equal(received.headers['apns-expiration'], String(Math.floor(expiresAt / 1000)));
    assert.equal(received.headers['apns-collapse-id'], 'order-o-1');
    assert.deepEqual(received.body, {
      aps: { alert: { title: 'Your order', body: 'has shipped' }, badge: 3, sound: 'default' },
      orderId: 'o-1',
      items: 2,
      deeplink: 'shop://orders/o-1',
    });
  });

  it('sends data-only content as a background push at priority 5, and a normal-priority alert at 5', async () => {
    const silent = deviceToken();
    assert.equal((await client.send(push(silent, { data: { sync: true }, priority: 'high' }), wait())).kind, 'sent');
    const [bg] = await r.sandbox.messages({ kind: 'apns', to: silent });
    assert.equal(bg?.headers['apns-push-type'], 'background');
    assert.equal(bg?.headers['apns-priority'], '5');
    assert.equal(bg?.headers['apns-expiration'], undefined, 'no expiry: no header, so APNs stores it for an offline device');
    assert.equal(bg?.headers['apns-collapse-id'], undefined);
    assert.deepEqual(bg?.body, { aps: { 'content-available': 1 }, sync: true });

    const relaxed = deviceToken();
    assert.equal((await client.send(push(relaxed, { body: 'when convenient', priority: 'normal' }), wait())).kind, 'sent');
    const [alert] = await r.sandbox.messages({ kind: 'apns', to: relaxed });
    assert.equal(alert?.headers['apns-push-type'], 'alert');
    assert.equal(alert?.headers['apns-priority'], '5');
  });

  it('disables the token on 410 Unregistered, 400 BadDeviceToken and DeviceTokenNotForTopic', async () => {
    for (const [status, reason] of [
      [410, 'Unregistered'],
      [400, 'BadDeviceToken'],
      [400, 'DeviceTokenNotForTopic'],
    ] as const) {
      const to = deviceToken();
      await r.sandbox.addBehavior({ kind: 'apns', to, status, reason, times: 1 });
      const outcome = await client.send(push(to), wait());
      assert.equal(outcome.kind, 'recipient-invalid', reason);
      assert.equal(outcome.kind === 'recipient-invalid' && outcome.code, reason);
      assert.equal(outcome.kind === 'recipient-invalid' && outcome.effect, 'disable-token');
      assert.equal((await r.sandbox.messages({ kind: 'apns', to })).length, 0);
    }
  });

  it('refuses a token that is not hex without sending it anywhere', async () => {
    const before = (await r.sandbox.counts()).apns ?? 0;
    const outcome = await client.send(push('../../3/device/abc'), wait());
    assert.deepEqual(outcome.kind === 'recipient-invalid' && [outcome.code, outcome.effect], ['BadDeviceToken', 'disable-token']);
    assert.equal((await r.sandbox.counts()).apns ?? 0, before);
  });

  it('retries 429 after its Retry-After, and 500 and 503', async () => {
    const to = deviceToken();
    await r.sandbox.addBehavior({ kind: 'apns', to, status: 429, reason: 'TooManyRequests', retryAfterSeconds: 7, times: 1 });
    const limited = await client.send(push(to), wait());
    assert.deepEqual(limited, { kind: 'failed', retryable: true, code: 'TooManyRequests', message: 'APNs answered 429 TooManyRequests', retryAfterMs: 7000 });
    await r.sandbox.addBehavior({ kind: 'apns', to, status: 500, times: 1 });
    const broken = await client.send(push(to), wait());
    assert.deepEqual(broken.kind === 'failed' && [broken.retryable, broken.code], [true, 'InternalServerError']);
    await r.sandbox.addBehavior({ kind: 'apns', to, status: 503, reason: 'ServiceUnavailable', times: 1 });
    const down = await client.send(push(to), wait());
    assert.deepEqual(down.kind === 'failed' && [down.retryable, down.code], [true, 'ServiceUnavailable']);
    assert.equal((await client.send(push(to), wait())).kind, 'sent', 'the rules retired after one use each');
    assert.equal((await r.sandbox.messages({ kind: 'apns', to })).length, 1);
  });

  it('fails permanently, with Apple’s reason, on other client errors', async () => {
    const to = deviceToken();
    await r.sandbox.addBehavior({ kind: 'apns', to, status: 400, reason: 'BadTopic', times: 1 });
    const outcome = await client.send(push(to), wait());
    assert.deepEqual(outcome.kind === 'failed' && [outcome.retryable, outcome.code], [false, 'BadTopic']);

    // A topic the key is not registered for: the stand-in itself refuses it.
    const otherApp = r.client({ ...(await apnsSandboxCredentials(r.sandbox)), topic: 'com.example.other' });
    const refused = await otherApp.send(push(deviceToken()), wait());
    assert.deepEqual(refused.kind === 'failed' && [refused.retryable, refused.code], [false, 'TopicDisallowed']);
  });

  it('fails a payload over 4 KB or a collapse key over 64 bytes before sending', async () => {
    const to = deviceToken();
    const big = await client.send(push(to, { title: 'Big', body: 'x'.repeat(4100) }), wait());
    assert.deepEqual(big.kind === 'failed' && [big.retryable, big.code], [false, 'PayloadTooLarge']);
    const collapse = await client.send(push(to, { title: 'C', collapseKey: 'k'.repeat(65) }), wait());
    assert.deepEqual(collapse.kind === 'failed' && [collapse.retryable, collapse.code], [false, 'BadCollapseId']);
    assert.equal((await r.sandbox.messages({ kind: 'apns', to })).length, 0);
  });

  it('reports a key the stand-in does not trust: retryable once (re-signed), then a permanent InvalidProviderToken', async () => {
    const untrusted = r.client(await apnsSandboxCredentials({ trust: async () => undefined }));
    const to = deviceToken();
    const first = await untrusted.send(push(to), wait());
    assert.deepEqual(first.kind === 'failed' && [first.retryable, first.code], [true, 'InvalidProviderToken']);
    const second = await untrusted.send(push(to), wait());
    assert.deepEqual(second.kind === 'failed' && [second.retryable, second.code], [false, 'InvalidProviderToken']);
    assert.equal((await r.sandbox.messages({ kind: 'apns', to })).length, 0);
  });
});

describe('APNs provider token lifetime', () => {
  it('reuses one JWT across sends and re-signs it once it is 50 minutes old', async () => {
    const clock = new ManualClock(Date.now());
    const r = await rig(clock);
    try {
      const c = r.client(await apnsSandboxCredentials(r.sandbox), clock);
      const tokenOf = async () => {
        const to = deviceToken();
        assert.equal((await c.send(push(to), wait())).kind, 'sent');
        const [m] = await r.sandbox.messages({ kind: 'apns', to });
        return m?.headers.authorization;
      };
      const first = await tokenOf();
      assert.match(first ?? '', /^bearer /);
      clock.advance(30 * 60_000);
      assert.equal(await tokenOf(), first, 'a 30-minute-old token is reused (Apple: no more than one refresh per 20 minutes)');
      clock.advance(21 * 60_000);
      const renewed = await tokenOf();
      assert.notEqual(renewed, first, 'a 51-minute-old token is replaced before APNs would call it expired');
      clock.advance(10 * 60_000);
      assert.equal(await tokenOf(), renewed);
    } finally {
      await r.close();
    }
  });

  it('re-signs once when APNs says the token expired, and the retry goes through', async () => {
    const providerClock = new ManualClock(Date.now());
    const apnsClock = new ManualClock(providerClock.now());
    const r = await rig(apnsClock);
    try {
      const c = r.client(await apnsSandboxCredentials(r.sandbox), providerClock);
      assert.equal((await c.send(push(deviceToken()), wait())).kind, 'sent');
      // Our clock runs slow: to us the token is 10 minutes old, to APNs 61.
      providerClock.advance(10 * 60_000);
      apnsClock.advance(61 * 60_000);
      const expired = await c.send(push(deviceToken()), wait());
      assert.deepEqual(expired.kind === 'failed' && [expired.retryable, expired.code], [true, 'ExpiredProviderToken']);
      const to = deviceToken();
      assert.equal((await c.send(push(to), wait())).kind, 'sent');
      assert.equal((await r.sandbox.messages({ kind: 'apns', to })).length, 1);
    } finally {
      await r.close();
    }
  });
});
