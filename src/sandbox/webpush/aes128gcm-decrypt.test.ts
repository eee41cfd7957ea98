import assert from 'node:assert/strict';
import { createCipheriv, createECDH } from 'node:crypto';
import { describe, it } from 'node:test';
import webpush from 'web-push';
import { DecryptError, decryptAes128gcm, type ReceiverKeys } from './aes128gcm-decrypt.ts';

const b64 = (s: string): Buffer => Buffer.from(s, 'base64url');

// RFC 8291 Appendix A (and §5): the receiver's keys, the message and the intermediate values.
const RFC = {
  authSecret: 'BTBZMqHH6r4Tts7J_aSIgg',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  body:
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml' +
    'mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT' +
    'pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
  header:
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  cek: 'oIhVW04MRdy2XN9CiKLxTg',
  nonce: '4h_95klXJ5E_qnoN',
  plaintext: 'When I grow up, I want to be a watermelon',
};

const rfcKeys: ReceiverKeys = {
  privateKey: b64(RFC.uaPrivate),
  publicKey: b64(RFC.uaPublic),
  authSecret: b64(RFC.authSecret),
};

/** Re-encrypts the RFC's plaintext with the RFC's CEK and nonce, ending it with `delimiter`. */
function rfcRecord(delimiter: number): Buffer {
  const cipher = createCipheriv('aes-128-gcm', b64(RFC.cek), b64(RFC.nonce));
  const sealed = Buffer.concat([
    cipher.update(Buffer.concat([Buffer.from(RFC.plaintext), Buffer.from([delimiter])])),
    cipher.final(),
  ]);
  return Buffer.concat([b64(RFC.header), sealed, cipher.getAuthTag()]);
}

describe('aes128gcm decryption (RFC 8291, RFC 8188)', () => {
  it('decrypts the RFC 8291 Appendix A example to its plaintext', () => {
    assert.equal(decryptAes128gcm(b64(RFC.body), rfcKeys).toString('utf8'), RFC.plaintext);
  });

  it('derives the RFC intermediate values: re-encrypting with its CEK and nonce reproduces the example body', () => {
    assert.equal(rfcRecord(0x02).toString('base64url'), RFC.body);
  });

  it('rejects a padding delimiter other than 0x02, as RFC 8291 §4 requires', () => {
    assert.throws(
      () => decryptAes128gcm(rfcRecord(0x01), rfcKeys),
      (e: unknown) => e instanceof DecryptError && /delimiter is 0x01/.test(e.message),
    );
  });

  it('rejects a tampered body, a wrong auth secret and a wrong receiver key', () => {
    const tampered = b64(RFC.body);
    tampered[tampered.length - 20]! ^= 0x01;
    assert.throws(() => decryptAes128gcm(tampered, rfcKeys), /authentication failed/);
    assert.throws(
      () => decryptAes128gcm(b64(RFC.body), { ...rfcKeys, authSecret: Buffer.alloc(16, 7) }),
      /authentication failed/,
    );
    const other = createECDH('prime256v1');
    other.generateKeys();
    assert.throws(
      () =>
        decryptAes128gcm(b64(RFC.body), {
          ...rfcKeys,
          privateKey: other.getPrivateKey(),
          publicKey: other.getPublicKey(),
        }),
      DecryptError,
    );
  });

  it('rejects bodies that break the header rules: truncated, a short keyid, two records', () => {
    assert.throws(() => decryptAes128gcm(b64(RFC.body).subarray(0, 30), rfcKeys), DecryptError);
    const shortKeyId = b64(RFC.body);
    shortKeyId[20] = 32;
    assert.throws(() => decryptAes128gcm(shortKeyId, rfcKeys), /keyid is 32 bytes/);
    const smallRs = b64(RFC.body);
    smallRs.writeUInt32BE(20, 16); // the 58-byte record no longer fits in one record of rs 20
    assert.throws(() => decryptAes128gcm(smallRs, rfcKeys), /more than one record/);
  });

  it('decrypts what the web-push library encrypts for a fresh subscription (the sender Herald uses)', () => {
    const ua = createECDH('prime256v1');
    ua.generateKeys();
    const auth = Buffer.alloc(16, 3);
    const vapid = webpush.generateVAPIDKeys();
    const details = webpush.generateRequestDetails(
      {
        endpoint: 'https://push.example.net/push/abc',
        keys: { p256dh: ua.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
      },
      '{"title":"héllo"}',
      {
        vapidDetails: {
          subject: 'mailto:a@example.net',
          publicKey: vapid.publicKey,
          privateKey: vapid.privateKey,
        },
        contentEncoding: 'aes128gcm',
      },
    );
    const plain = decryptAes128gcm(details.body, {
      privateKey: ua.getPrivateKey(),
      publicKey: ua.getPublicKey(),
      authSecret: auth,
    });
    assert.equal(plain.toString('utf8'), '{"title":"héllo"}');
  });
});
