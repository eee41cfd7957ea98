import assert from 'node:assert/strict';
import { createPrivateKey, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import webpush from 'web-push';
import { systemClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/logger.ts';
import type { WebPushSubscription } from '../../profiles/profile-model.ts';
import { startSandbox, type LocalSandbox } from '../sandbox.ts';
import { createSandboxSubscription } from './webpush-sandbox-credentials.ts';
import { webpushSandbox } from './webpush-sandbox.ts';

const vapid = webpush.generateVAPIDKeys();
const SUBJECT = 'mailto:ops@example.net';

/** An ES256 JWT with any claims, signed by `vapid`, to reach the checks web-push will not let us fail. */
function jwt(claims: Record<string, unknown>): string {
  const pub = Buffer.from(vapid.publicKey, 'base64url');
  const key = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: vapid.privateKey,
      x: pub.subarray(1, 33).toString('base64url'),
      y: pub.subarray(33).toString('base64url'),
    },
    format: 'jwk',
  });
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const signed = `${part({ typ: 'JWT', alg: 'ES256' })}.${part(claims)}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

describe('webpush sandbox push service is strict about RFC 8030, 8291 and 8292', () => {
  let sandbox: LocalSandbox;
  let subscription: WebPushSubscription;
  let origin: string;

  /** A valid request from the web-push library, then the changes a test makes to it. */
  const push = async (
    change: (headers: Record<string, string>, body: Buffer) => Buffer | void = () => undefined,
    to = subscription,
  ) => {
    const details = webpush.generateRequestDetails(to, '{"title":"hi"}', {
      vapidDetails: { subject: SUBJECT, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      TTL: 60,
      contentEncoding: 'aes128gcm',
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(details.headers)) headers[k.toLowerCase()] = String(v);
    delete headers['content-length'];
    const body = change(headers, details.body) ?? details.body;
    const response = await fetch(to.endpoint, { method: 'POST', headers, body });
    return {
      status: response.status,
      text: await response.text(),
      location: response.headers.get('location'),
    };
  };
  const claimsFor = (changes: Record<string, unknown>) => ({
    aud: origin,
    exp: Math.floor(Date.now() / 1000) + 3600,
    sub: SUBJECT,
    ...changes,
  });
  const withToken = (claims: Record<string, unknown>) => (headers: Record<string, string>) => {
    headers.authorization = `vapid t=${jwt(claims)}, k=${vapid.publicKey}`;
  };

  before(async () => {
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [webpushSandbox] });
    origin = new URL(sandbox.endpoints.webpush!).origin;
    subscription = await createSandboxSubscription(sandbox.endpoints.webpush!);
  });
  after(() => sandbox.close());

  it('subscribes like a browser and accepts a correct push with 201 and a Location', async () => {
    assert.match(subscription.endpoint, new RegExp(`^${origin}/push/[A-Za-z0-9_-]+$`));
    assert.equal(Buffer.from(subscription.keys.p256dh, 'base64url').length, 65);
    assert.equal(Buffer.from(subscription.keys.auth, 'base64url').length, 16);
    const answer = await push();
    assert.equal(answer.status, 201, answer.text);
    assert.match(answer.location ?? '', /\/messages\//);
    const [message] = await sandbox.messages({ kind: 'webpush', to: subscription.endpoint });
    assert.deepEqual(message?.body, { title: 'hi' });
  });

  it('refuses missing or malformed VAPID with 401 and invalid VAPID with 403', async () => {
    const cases: [string, (h: Record<string, string>, b: Buffer) => Buffer | void, number, RegExp][] = [
      ['no Authorization', (h) => void delete h.authorization, 401, /missing/],
      [
        'the legacy WebPush scheme',
        (h) => void (h.authorization = `WebPush ${jwt(claimsFor({}))}`),
        401,
        /scheme/,
      ],
      ['another audience', withToken(claimsFor({ aud: 'https://push.example.net' })), 403, /aud/],
      ['an expired token', withToken(claimsFor({ exp: Math.floor(Date.now() / 1000) - 60 })), 403, /expired/],
      [
        'exp beyond 24 hours',
        withToken(claimsFor({ exp: Math.floor(Date.now() / 1000) + 25 * 3600 })),
        403,
        /24 hours/,
      ],
      ['no sub', withToken(claimsFor({ sub: undefined })), 403, /sub/],
      [
        'a forged signature',
        (h) =>
          void (h.authorization = h.authorization!.replace(
            /k=.*/,
            `k=${webpush.generateVAPIDKeys().publicKey}`,
          )),
        403,
        /signature/,
      ],
    ];
    for (const [name, change, status, reason] of cases) {
      const answer = await push(change);
      assert.equal(answer.status, status, name);
      assert.match(answer.text, reason, name);
    }
  });

  it('refuses a missing TTL, another content coding, a body it cannot decrypt and a body over 4096 bytes', async () => {
    const other = await createSandboxSubscription(sandbox.endpoints.webpush!);
    const before = (await sandbox.messages({ kind: 'webpush', to: subscription.endpoint })).length;
    const missingTtl = await push((h) => void delete h.ttl);
    assert.deepEqual([missingTtl.status, /TTL/.test(missingTtl.text)], [400, true]);
    const aesgcm = await push((h) => void (h['content-encoding'] = 'aesgcm'));
    assert.equal(aesgcm.status, 415);
    const badTopic = await push((h) => void (h.topic = 'not a valid topic!'));
    assert.equal(badTopic.status, 400);
    // Encrypted to another browser's keys, then posted to this subscription.
    const misrouted = await push(() => undefined, { ...other, endpoint: subscription.endpoint });
    assert.deepEqual([misrouted.status, /could not decrypt/.test(misrouted.text)], [400, true]);
    const huge = await push(() => Buffer.alloc(5000, 1));
    assert.equal(huge.status, 413);
    const unknown = await push(() => undefined, {
      ...subscription,
      endpoint: `${origin}/push/neverSubscribed0`,
    });
    assert.equal(unknown.status, 404);
    assert.equal(
      (await sandbox.messages({ kind: 'webpush', to: subscription.endpoint })).length,
      before,
      'none of them was recorded',
    );
  });
});
