import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { systemClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import { apnsSandboxCredentials } from '../../../sandbox/apns/apns-sandbox-credentials.ts';
import type { ProviderContext } from '../../provider.ts';
import { apnsOrigin, apnsProvider, type ApnsCredentials } from './apns-provider.ts';

const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
const good: ApnsCredentials = {
  team_id: 'ABCDE12345',
  key_id: 'KEY1234567',
  private_key: p256.export({ type: 'pkcs8', format: 'pem' }).toString(),
  topic: 'com.example.app',
};
const context = (sandbox: Record<string, string> = {}): ProviderContext => ({ clock: systemClock, logger: silentLogger, sandbox, allowPrivateTargets: false });

describe('APNs credentials', () => {
  it('accepts a .p8 key and fills in the production environment', () => {
    const result = apnsProvider.validate(good);
    assert.ok(result.ok);
    assert.equal(result.credentials.environment, 'production');
    assert.equal(apnsOrigin(result.credentials, context()), 'https://api.push.apple.com');
  });

  it('names every bad field, and never repeats the key in a message', () => {
    const secretish = '-----BEGIN PRIVATE KEY-----\nTOP-SECRET-MATERIAL\n-----END PRIVATE KEY-----';
    const result = apnsProvider.validate({ team_id: 'abc de 123', key_id: 'KEY-12345!', private_key: secretish, topic: 'not a bundle id', endpoint: 'ftp://apns.example.com' });
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.problems.map((p) => [p.path, p.code]), [
      ['/team_id', 'INVALID_TEAM_ID'],
      ['/key_id', 'INVALID_KEY_ID'],
      ['/private_key', 'INVALID_PRIVATE_KEY'],
      ['/topic', 'INVALID_TOPIC'],
      ['/endpoint', 'INVALID_ENDPOINT'],
    ]);
    assert.ok(!JSON.stringify(result).includes('TOP-SECRET'), 'the key text stays out of the answer');
  });

  it('refuses a key of the wrong kind: RSA, or another curve', () => {
    for (const key of [
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey,
    ]) {
      const result = apnsProvider.validate({ ...good, private_key: key.export({ type: 'pkcs8', format: 'pem' }).toString() });
      assert.deepEqual(!result.ok && result.problems.map((p) => [p.path, p.code]), [['/private_key', 'INVALID_PRIVATE_KEY']]);
    }
  });

  it('stores a SEC1 "EC PRIVATE KEY" export of a P-256 key as PKCS#8', () => {
    const result = apnsProvider.validate({ ...good, private_key: p256.export({ type: 'sec1', format: 'pem' }).toString() });
    assert.ok(result.ok);
    assert.match(result.credentials.private_key, /^-----BEGIN PRIVATE KEY-----/);
  });

  it('resolves development, an explicit origin and the sandbox', async () => {
    const dev = apnsProvider.validate({ ...good, environment: 'development' });
    assert.ok(dev.ok);
    assert.equal(apnsOrigin(dev.credentials, context()), 'https://api.sandbox.push.apple.com');
    const explicit = apnsProvider.validate({ ...good, environment: 'development', endpoint: 'https://apns.internal.example:8443/' });
    assert.ok(explicit.ok);
    assert.equal(apnsOrigin(explicit.credentials, context()), 'https://apns.internal.example:8443');
    const sandboxed = apnsProvider.validate(await apnsSandboxCredentials({ trust: async () => undefined }));
    assert.ok(sandboxed.ok, 'sandbox credentials pass validation');
    assert.equal(apnsOrigin(sandboxed.credentials, context({ apns: 'http://127.0.0.1:4999' })), 'http://127.0.0.1:4999');
  });
});
