import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { smtpProvider, type SmtpCredentials } from './smtp-provider.ts';

describe('smtp credentials', () => {
  const problems = (credentials: unknown): [string, string][] => {
    const result = smtpProvider.validate(credentials);
    return result.ok ? [] : result.problems.map((p) => [p.path, p.code]);
  };

  it('accepts a submission server and fills in the defaults', () => {
    const result = smtpProvider.validate({
      host: 'SMTP.Example.com',
      username: 'u',
      password: 'p',
      from: { email: 'news@example.com', name: 'News' },
    });
    assert.ok(result.ok);
    const expected: SmtpCredentials = {
      host: 'smtp.example.com',
      port: 587,
      secure: false,
      require_tls: true,
      username: 'u',
      password: 'p',
      from: { email: 'news@example.com', name: 'News' },
    };
    assert.deepEqual(result.credentials, expected);
    const implicit = smtpProvider.validate({
      host: 'smtp.example.com',
      secure: true,
      from: { email: 'a@example.com' },
    });
    assert.equal(implicit.ok && implicit.credentials.port, 465);
  });

  it('names the path of every problem', () => {
    assert.deepEqual(
      problems({
        host: 'smtp://mail.example.com:25',
        port: 0,
        username: 'only-user',
        from: { email: 'not an address' },
      }),
      [
        ['/from/email', 'INVALID_EMAIL'],
        ['/host', 'INVALID_HOST'],
        ['/port', 'INVALID_PORT'],
        ['/password', 'MISSING_PASSWORD'],
      ],
    );
    assert.deepEqual(
      problems({
        port: 25,
        password: 'secret',
        reply_to: 'x@',
        from: { email: 'a@example.com', name: 'Line\r\nBcc: evil@example.com' },
      }),
      [
        ['/from/name', 'INVALID_NAME'],
        ['/reply_to', 'INVALID_EMAIL'],
        ['/host', 'MISSING_HOST'],
        ['/username', 'MISSING_USERNAME'],
      ],
    );
    assert.deepEqual(
      problems({ host: 'smtp.example.com', port: 587, secure: true, from: { email: 'a@example.com' } }),
      [['/secure', 'TLS_MODE_MISMATCH']],
    );
    assert.deepEqual(problems({ host: 'smtp.example.com', port: 70_000, from: { email: 'a@example.com' } }), [
      ['/port', 'INVALID_PORT'],
    ]);
  });

  it('needs no host for the sandbox, and never puts the password in a problem', () => {
    assert.deepEqual(problems({ endpoint: 'sandbox', from: { email: 'demo@sandbox.herald.invalid' } }), []);
    const result = smtpProvider.validate({
      host: 'bad host',
      username: 'u',
      password: 'hunter2-secret',
      from: { email: 'a@example.com' },
    });
    assert.doesNotMatch(JSON.stringify(result), /hunter2-secret/);
  });
});
