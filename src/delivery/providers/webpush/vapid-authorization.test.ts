import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import webpush from 'web-push';
import { verifyVapid } from '../../../sandbox/webpush/vapid-verify.ts';
import { VapidAuthorization } from './vapid-authorization.ts';

describe('VAPID authorization', () => {
  const keys = webpush.generateVAPIDKeys();
  const credentials = {
    vapid_public_key: keys.publicKey,
    vapid_private_key: keys.privateKey,
    subject: 'mailto:ops@example.net',
  };

  it('signs a token per push service origin that a push service accepts for that origin only', () => {
    const vapid = new VapidAuthorization(credentials);
    const nowS = Math.floor(Date.now() / 1000);
    const fcm = vapid.header('https://fcm.googleapis.com', Date.now());
    const mozilla = vapid.header('https://updates.push.services.mozilla.com', Date.now());
    const accepted = verifyVapid(fcm, { audience: 'https://fcm.googleapis.com', nowS });
    assert.deepEqual(accepted.ok && [accepted.publicKey, accepted.subject], [
      keys.publicKey,
      'mailto:ops@example.net',
    ]);
    assert.equal(
      verifyVapid(mozilla, { audience: 'https://updates.push.services.mozilla.com', nowS }).ok,
      true,
    );
    const elsewhere = verifyVapid(fcm, { audience: 'https://updates.push.services.mozilla.com', nowS });
    assert.equal(!elsewhere.ok && elsewhere.status, 403);
  });

  it('reuses a token within the hour and signs a fresh one after', () => {
    const vapid = new VapidAuthorization(credentials);
    const t0 = Date.now();
    const first = vapid.header('https://fcm.googleapis.com', t0);
    assert.equal(vapid.header('https://fcm.googleapis.com', t0 + 59 * 60_000), first);
    // ECDSA signatures are randomised, so a re-signed token differs even within the same second.
    assert.notEqual(vapid.header('https://fcm.googleapis.com', t0 + 61 * 60_000), first);
  });
});
