import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import { fcmSandbox } from '../../../sandbox/fcm/fcm-sandbox.ts';
import { fcmSandboxCredentials } from '../../../sandbox/fcm/fcm-sandbox-credentials.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import type { DeliveryRequest, PushContent, SendOutcome } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { parseServiceAccountKey } from './fcm-credentials.ts';
import { FcmAccessTokens } from './fcm-oauth.ts';
import { fcmProvider, type FcmCredentials } from './fcm-provider.ts';

const MINUTE = 60_000;

function request(to: string, content: PushContent = { title: 'Hello', body: 'World' }, expiresAt: number | null = null): DeliveryRequest {
  return { messageId: randomUUID(), projectId: 'prj_test', channel: 'push', to, platform: 'android', content, category: 'transactional', expiresAt, attempt: 1 };
}

const failure = (o: SendOutcome) => (o.kind === 'failed' ? { retryable: o.retryable, code: o.code, retryAfterMs: o.retryAfterMs } : o.kind);
const invalidity = (o: SendOutcome) => (o.kind === 'recipient-invalid' ? { code: o.code, effect: o.effect } : o.kind);

describe('fcm provider against the sandbox FCM and OAuth endpoints', () => {
  const clock = new ManualClock(Date.now());
  let sandbox: LocalSandbox;
  let context: ProviderContext;
  const clients: ProviderClient[] = [];

  const client = async (tweak: (c: FcmCredentials) => FcmCredentials = (c) => c): Promise<ProviderClient> => {
    const checked = fcmProvider.validate(tweak(await fcmSandboxCredentials(sandbox)));
    assert.ok(checked.ok, JSON.stringify(checked));
    const c = fcmProvider.create(checked.credentials, context);
    clients.push(c);
    return c;
  };
  const send = (c: ProviderClient, req: DeliveryRequest) => c.send(req, AbortSignal.timeout(10_000));
  /** The access tokens the stand-in saw on these recipients' messages: one per token exchange. */
  const bearers = async (tokens: string[]) => {
    const seen = new Set<string>();
    for (const to of tokens) for (const m of await sandbox.messages({ kind: 'fcm', to })) seen.add(m.headers.authorization ?? '');
    return seen;
  };

  before(async () => {
    sandbox = await startSandbox({ clock, logger: silentLogger, services: [fcmSandbox] });
    context = { clock, logger: silentLogger, sandbox: sandbox.endpoints, allowPrivateTargets: false };
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox.close();
  });

  it('delivers notification, data (as strings, with the deeplink) and android priority, ttl and collapse key', async () => {
    const c = await client();
    const outcome = await send(
      c,
      request(
        'tok-happy',
        { title: 'Order shipped', body: 'Arrives Tuesday', deeplink: 'app://orders/o-1', data: { order: 'o-1', count: 3, vip: true, gone: null }, priority: 'high', collapseKey: 'orders' },
        clock.now() + 60 * MINUTE,
      ),
    );
    assert.equal(outcome.kind, 'sent');
    const [received] = await sandbox.messages({ kind: 'fcm', to: 'tok-happy' });
    assert.equal(outcome.kind === 'sent' && outcome.providerMessageId?.startsWith('projects/herald-sandbox/messages/'), true);
    assert.deepEqual(received?.body, {
      token: 'tok-happy',
      notification: { title: 'Order shipped', body: 'Arrives Tuesday' },
      data: { order: 'o-1', count: '3', vip: 'true', deeplink: 'app://orders/o-1' },
      android: { priority: 'HIGH', ttl: '3600s', collapse_key: 'orders' },
    });
    assert.match(received?.headers.authorization ?? '', /^Bearer ya29\.sandbox-/);

    assert.equal((await send(c, request('tok-data', { data: { sync: 'now' }, priority: 'normal' }))).kind, 'sent');
    const [dataOnly] = await sandbox.messages({ kind: 'fcm', to: 'tok-data' });
    assert.deepEqual(dataOnly?.body, { token: 'tok-data', data: { sync: 'now' }, android: { priority: 'NORMAL' } }, 'no notification and no ttl when none is given');
  });

  it('fetches the access token once and reuses it across many sends', async () => {
    const c = await client();
    const tokens = Array.from({ length: 12 }, (_, i) => `tok-reuse-${i}`);
    for (const to of tokens) assert.equal((await send(c, request(to))).kind, 'sent');
    assert.equal((await bearers(tokens)).size, 1);
  });

  it('shares one token exchange among concurrent first sends', async () => {
    const c = await client();
    const tokens = Array.from({ length: 25 }, (_, i) => `tok-burst-${i}`);
    const outcomes = await Promise.all(tokens.map((to) => send(c, request(to))));
    assert.deepEqual(new Set(outcomes.map((o) => o.kind)), new Set(['sent']));
    assert.equal((await bearers(tokens)).size, 1);
  });

  it('keeps the token while it is valid and fetches a new one once it is about to expire', async () => {
    const c = await client();
    assert.equal((await send(c, request('tok-clock-1'))).kind, 'sent');
    clock.advance(50 * MINUTE);
    assert.equal((await send(c, request('tok-clock-2'))).kind, 'sent');
    assert.equal((await bearers(['tok-clock-1', 'tok-clock-2'])).size, 1, 'still the first token after 50 minutes');
    clock.advance(11 * MINUTE); // 61 minutes: the stand-in no longer accepts the first token
    assert.equal((await send(c, request('tok-clock-3'))).kind, 'sent');
    assert.equal((await bearers(['tok-clock-1', 'tok-clock-3'])).size, 2);
  });

  it('drops the access token when FCM answers 401, reports a retry, and the next send uses a new one', async () => {
    const c = await client();
    assert.equal((await send(c, request('tok-401-a'))).kind, 'sent');
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-401-b', status: 401, times: 1 });
    assert.deepEqual(failure(await send(c, request('tok-401-b'))), { retryable: true, code: 'UNAUTHENTICATED', retryAfterMs: undefined });
    assert.equal((await send(c, request('tok-401-b'))).kind, 'sent');
    assert.equal((await bearers(['tok-401-a', 'tok-401-b'])).size, 2);
  });

  it('disables the token on UNREGISTERED, SENDER_ID_MISMATCH and an invalid registration token', async () => {
    const c = await client();
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-gone', status: 404, reason: 'UNREGISTERED' });
    assert.deepEqual(invalidity(await send(c, request('tok-gone'))), { code: 'UNREGISTERED', effect: 'disable-token' });
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-other-sender', status: 403, reason: 'SENDER_ID_MISMATCH' });
    assert.deepEqual(invalidity(await send(c, request('tok-other-sender'))), { code: 'SENDER_ID_MISMATCH', effect: 'disable-token' });
    // Refused by the stand-in's own token check, as FCM refuses a malformed token.
    assert.deepEqual(invalidity(await send(c, request('not a token'))), { code: 'INVALID_ARGUMENT', effect: 'disable-token' });
  });

  it('fails permanently, keeping the token, when the message itself is invalid or the project is wrong', async () => {
    const c = await client();
    // FCM reserves "from" in data: the message is wrong, not the token.
    assert.deepEqual(failure(await send(c, request('tok-bad-data', { title: 't', data: { from: 'me' } }))), {
      retryable: false,
      code: 'INVALID_ARGUMENT',
      retryAfterMs: undefined,
    });
    const misrouted = await client((cr) => ({ ...cr, service_account: { ...cr.service_account, project_id: 'someone-else' } }));
    assert.deepEqual(failure(await send(misrouted, request('tok-misrouted'))), { retryable: false, code: 'PERMISSION_DENIED', retryAfterMs: undefined });
    assert.equal((await sandbox.messages({ kind: 'fcm', to: 'tok-bad-data' })).length, 0);
  });

  it('retries QUOTA_EXCEEDED after its Retry-After, UNAVAILABLE and INTERNAL', async () => {
    const c = await client();
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-busy', status: 429, reason: 'QUOTA_EXCEEDED', retryAfterSeconds: 30, times: 1 });
    assert.deepEqual(failure(await send(c, request('tok-busy'))), { retryable: true, code: 'QUOTA_EXCEEDED', retryAfterMs: 30_000 });
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-busy', status: 503, reason: 'UNAVAILABLE', retryAfterSeconds: 5, times: 1 });
    assert.deepEqual(failure(await send(c, request('tok-busy'))), { retryable: true, code: 'UNAVAILABLE', retryAfterMs: 5_000 });
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-busy', status: 500, times: 1 });
    assert.deepEqual(failure(await send(c, request('tok-busy'))), { retryable: true, code: 'INTERNAL', retryAfterMs: undefined });
    assert.equal((await send(c, request('tok-busy'))).kind, 'sent', 'the rules retired after one use each');
  });

  it('reports a service account the token endpoint does not trust as a permanent failure, without throwing', async () => {
    const untrusted = await fcmSandboxCredentials({ endpoints: sandbox.endpoints, trust: () => Promise.resolve() });
    const c = fcmProvider.create(untrusted, context);
    clients.push(c);
    const outcome = await send(c, request('tok-untrusted'));
    assert.deepEqual(failure(outcome), { retryable: false, code: 'OAUTH_INVALID_GRANT', retryAfterMs: undefined });
    assert.equal(outcome.kind === 'failed' && outcome.message.includes(untrusted.service_account.private_key), false, 'no key in the message');
    // A trusted account signing with another key fails the signature check the same way.
    const other = await fcmSandboxCredentials(sandbox);
    const forged = await client((cr) => ({ ...cr, service_account: { ...cr.service_account, private_key: other.service_account.private_key } }));
    assert.deepEqual(failure(await send(forged, request('tok-untrusted'))), { retryable: false, code: 'OAUTH_INVALID_GRANT', retryAfterMs: undefined });
    assert.equal((await sandbox.messages({ kind: 'fcm', to: 'tok-untrusted' })).length, 0);
  });

  it('answers retryable when FCM cannot be reached or hangs', async () => {
    const unreachable = await client((cr) => ({ ...cr, endpoint: 'http://127.0.0.1:1' }));
    assert.deepEqual(failure(await send(unreachable, request('tok-net'))), { retryable: true, code: 'NETWORK', retryAfterMs: undefined });
    const c = await client();
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-hang', hang: true, times: 1 });
    assert.deepEqual(failure(await c.send(request('tok-hang'), AbortSignal.timeout(300))), { retryable: true, code: 'TIMEOUT', retryAfterMs: undefined });
    await sandbox.addBehavior({ kind: 'fcm', to: 'tok-hang', hang: true, times: 1 });
    const shutdown = new AbortController();
    const pending = c.send(request('tok-hang'), shutdown.signal);
    setTimeout(() => shutdown.abort(), 100);
    assert.deepEqual(failure(await pending), { retryable: true, code: 'ABORTED', retryAfterMs: undefined });
  });

  it('the stand-in refuses what FCM refuses: no token, non-string data, a bad ttl or priority, two targets', async () => {
    const creds = await fcmSandboxCredentials(sandbox);
    const key = parseServiceAccountKey(creds.service_account.private_key);
    assert.ok(typeof key !== 'string');
    const sa = creds.service_account;
    const accessToken = await new FcmAccessTokens({ clientEmail: sa.client_email, privateKeyId: sa.private_key_id, tokenUri: sa.token_uri, key }, clock).get(AbortSignal.timeout(10_000));
    const post = async (message: unknown, authorization = `Bearer ${accessToken}`) => {
      const res = await fetch(`${sandbox.endpoints.fcm}/v1/projects/${sa.project_id}/messages:send`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ message }),
      });
      const body = (await res.json()) as { error?: { status: string; details?: { errorCode?: string }[] } };
      return [res.status, body.error?.status, body.error?.details?.find((d) => d.errorCode)?.errorCode];
    };
    assert.deepEqual(await post({ token: 'tok-raw' }, 'Bearer ya29.forged'), [401, 'UNAUTHENTICATED', undefined]);
    assert.deepEqual(await post({ token: 'tok-raw', data: { n: 1 } }), [400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    assert.deepEqual(await post({ token: 'tok-raw', android: { ttl: '3600' } }), [400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    assert.deepEqual(await post({ token: 'tok-raw', android: { priority: 'high' } }), [400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    assert.deepEqual(await post({ token: 'tok-raw', topic: 'news' }), [400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    assert.deepEqual(await post({ token: 'tok-raw', android: { ttl: '1.5s', priority: 'HIGH' } }).then((r) => r[0]), 200);
    assert.equal((await sandbox.messages({ kind: 'fcm', to: 'tok-raw' })).length, 1, 'only the valid message was recorded');
  });

  it('validates credentials and names the path of each problem, never echoing the key', async () => {
    const good = await fcmSandboxCredentials(sandbox);
    const withExtras = { ...good, service_account: { ...good.service_account, client_id: '1234', auth_uri: 'https://accounts.google.com/o/oauth2/auth' } };
    const checked = fcmProvider.validate(withExtras);
    assert.ok(checked.ok);
    assert.deepEqual(Object.keys(checked.credentials.service_account).sort(), ['client_email', 'private_key', 'private_key_id', 'project_id', 'token_uri', 'type']);

    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const bad = fcmProvider.validate({
      service_account: { ...good.service_account, project_id: 'Not_A_Project', client_email: 'nobody', token_uri: 'http://oauth.example.com/token', private_key: ec.privateKey },
      endpoint: 'ftp://fcm.example.com',
    });
    assert.equal(bad.ok, false);
    assert.deepEqual(!bad.ok && bad.problems.map((p) => [p.path, p.code]), [
      ['/service_account/project_id', 'INVALID_PROJECT_ID'],
      ['/service_account/private_key', 'INVALID_PRIVATE_KEY'],
      ['/service_account/client_email', 'INVALID_CLIENT_EMAIL'],
      ['/service_account/token_uri', 'INVALID_URL'],
      ['/endpoint', 'INVALID_URL'],
    ]);
    assert.equal(JSON.stringify(bad).includes('BEGIN PRIVATE KEY'), false);

    const garbage = fcmProvider.validate({ service_account: { ...good.service_account, private_key: 'not a key' } });
    assert.deepEqual(!garbage.ok && garbage.problems.map((p) => [p.path, p.code]), [['/service_account/private_key', 'INVALID_PRIVATE_KEY']]);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const weak = fcmProvider.validate({ service_account: { ...good.service_account, private_key: small.privateKey } });
    assert.match(!weak.ok ? (weak.problems[0]?.message ?? '') : '', /2048/);
  });
});
