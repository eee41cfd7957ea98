import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import webpush from 'web-push';
import { webpushProvider } from './webpush-provider.ts';

const problemsOf = (credentials: Record<string, string>) => {
  const result = webpushProvider.validate(credentials);
  return result.ok ? [] : result.problems.map((p) => [p.path, p.code]);
};

describe('webpush credentials', () => {
  const keys = webpush.generateVAPIDKeys();
  const other = webpush.generateVAPIDKeys();

  it('names the path of each problem: keys that are not P-256, a subject that is not a contact URI', () => {
    assert.deepEqual(
      problemsOf({ vapid_public_key: 'AAAA', vapid_private_key: 'not a key!', subject: 'ftp://example.net' }),
      [
        ['/vapid_public_key', 'INVALID_KEY'],
        ['/vapid_private_key', 'INVALID_KEY'],
        ['/subject', 'INVALID_SUBJECT'],
      ],
    );
    // 32 bytes, but zero is not a valid P-256 scalar.
    const zero = Buffer.alloc(32).toString('base64url');
    assert.deepEqual(
      problemsOf({
        vapid_public_key: keys.publicKey,
        vapid_private_key: zero,
        subject: 'mailto:ops@example.net',
      }),
      [['/vapid_private_key', 'INVALID_KEY']],
    );
    // A compressed point (33 bytes) is not what browsers take as applicationServerKey.
    const compressed = Buffer.from(keys.publicKey, 'base64url').subarray(0, 33).toString('base64url');
    assert.deepEqual(
      problemsOf({
        vapid_public_key: compressed,
        vapid_private_key: keys.privateKey,
        subject: 'mailto:ops@example.net',
      }),
      [['/vapid_public_key', 'INVALID_KEY']],
    );
  });

  it('refuses a public key that is not the private key’s, without echoing either', () => {
    const result = webpushProvider.validate({
      vapid_public_key: other.publicKey,
      vapid_private_key: keys.privateKey,
      subject: 'mailto:ops@example.net',
    });
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.problems.map((p) => [p.path, p.code]), [
      ['/vapid_public_key', 'KEY_MISMATCH'],
    ]);
    assert.ok(
      !result.ok &&
        result.problems.every(
          (p) => !p.message.includes(keys.privateKey) && !p.message.includes(other.publicKey),
        ),
    );
  });

  it('accepts only mailto: addresses and https: URLs as subject (RFC 8292 §2.1)', () => {
    const subject = (s: string) =>
      problemsOf({ vapid_public_key: keys.publicKey, vapid_private_key: keys.privateKey, subject: s });
    assert.deepEqual(subject('mailto:ops@example.net'), []);
    assert.deepEqual(subject('https://example.net/contact'), []);
    for (const bad of [
      'mailto: ops@example.net',
      'mailto:ops',
      'http://example.net',
      'ops@example.net',
      'https://',
    ]) {
      assert.deepEqual(subject(bad), [['/subject', 'INVALID_SUBJECT']], bad);
    }
  });

  it('normalises standard, padded base64 keys to unpadded base64url', () => {
    const padded = (k: string) => Buffer.from(k, 'base64url').toString('base64');
    assert.deepEqual(
      webpushProvider.validate({
        vapid_public_key: padded(keys.publicKey),
        vapid_private_key: padded(keys.privateKey),
        subject: 'https://example.net/contact',
      }),
      {
        ok: true,
        credentials: {
          vapid_public_key: keys.publicKey,
          vapid_private_key: keys.privateKey,
          subject: 'https://example.net/contact',
        },
      },
    );
  });
});
