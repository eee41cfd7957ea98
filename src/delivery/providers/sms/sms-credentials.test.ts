import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Compile } from 'typebox/compile';
import { SANDBOX_SMS_ACCOUNT, smsSandboxCredentials } from '../../../sandbox/sms/sms-sandbox-credentials.ts';
import { smsProvider } from './sms-provider.ts';

const ANA = '+14155550123';

describe('sms provider credentials', () => {
  it('refuses malformed credentials with the path of each problem, never echoing the token', () => {
    const token = 'short-token';
    const bad = smsProvider.validate({
      account_sid: 'AB123',
      auth_token: token,
      from: '555-0100',
      status_callback_url: 'http://example.com/status',
      endpoint: 'ftp://sms.example.com',
    });
    assert.equal(bad.ok, false);
    const problems = !bad.ok ? bad.problems : [];
    assert.deepEqual(
      problems.map((p) => [p.path, p.code]),
      [
        ['/account_sid', 'INVALID_ACCOUNT_SID'],
        ['/auth_token', 'INVALID_AUTH_TOKEN'],
        ['/from', 'INVALID_PHONE_NUMBER'],
        ['/status_callback_url', 'INVALID_URL'],
        ['/endpoint', 'INVALID_URL'],
      ],
    );
    assert.ok(!JSON.stringify(problems).includes(token));
    const base = { account_sid: SANDBOX_SMS_ACCOUNT.accountSid, auth_token: SANDBOX_SMS_ACCOUNT.authToken };
    const paths = (raw: unknown) => {
      const r = smsProvider.validate(raw);
      return r.ok ? [] : r.problems.map((p) => [p.path, p.code]);
    };
    assert.deepEqual(paths(base), [['/from', 'MISSING_SENDER']]);
    assert.deepEqual(paths({ ...base, from: ANA, messaging_service_sid: `MG${'0'.repeat(32)}` }), [
      ['/messaging_service_sid', 'CONFLICTING_SENDER'],
    ]);
    assert.deepEqual(paths({ ...base, messaging_service_sid: 'MG123' }), [
      ['/messaging_service_sid', 'INVALID_MESSAGING_SERVICE_SID'],
    ]);
    assert.deepEqual(paths({ ...base, from: ANA, endpoint: 'http://sms.example.com' }), [
      ['/endpoint', 'INVALID_URL'],
    ]);
    assert.deepEqual(paths({ ...base, from: ANA, endpoint: 'https://user:pw@sms.example.com' }), [
      ['/endpoint', 'INVALID_URL'],
    ]);
    assert.deepEqual(
      paths({
        ...base,
        from: ANA,
        endpoint: 'http://127.0.0.1:8080',
        status_callback_url: 'http://localhost:3000/cb',
      }),
      [],
    );
    const good = smsProvider.validate({
      ...base,
      from: ANA,
      status_callback_url: 'https://herald.example.com/v1/sms/status',
      endpoint: 'https://sms.example.com/',
    });
    assert.ok(good.ok);
    assert.equal(
      good.ok && good.credentials.endpoint,
      'https://sms.example.com',
      'the base URL is normalised',
    );
    assert.ok(
      Compile(smsProvider.credentialsSchema).Check(good.ok && good.credentials),
      'normalised credentials still match the schema',
    );
  });

  it('accepts the sandbox credentials as they are', async () => {
    const credentials = await smsSandboxCredentials({ trust: () => Promise.resolve() });
    assert.ok(Compile(smsProvider.credentialsSchema).Check(credentials));
    assert.deepEqual(smsProvider.validate(credentials), { ok: true, credentials });
  });
});
