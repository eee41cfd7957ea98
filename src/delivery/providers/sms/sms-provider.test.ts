import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import { SANDBOX_SMS_ACCOUNT, smsSandboxCredentials } from '../../../sandbox/sms/sms-sandbox-credentials.ts';
import { smsSandbox } from '../../../sandbox/sms/sms-sandbox.ts';
import type { DeliveryRequest, SendOutcome } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { verifyTwilioSignature } from './sms-callback-signature.ts';
import { smsProvider, type SmsCredentials } from './sms-provider.ts';

const ANA = '+14155550123';

function request(to: string, body: string, expiresAt: number | null = null): DeliveryRequest {
  return {
    messageId: randomUUID(),
    projectId: 'prj_test',
    channel: 'sms',
    to,
    content: { body },
    category: 'transactional',
    expiresAt,
    attempt: 1,
  };
}

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  form: URLSearchParams;
}

/** A local HTTP server that records what it gets and answers 201 like a Messages API would. */
async function startReceiver() {
  const received: Received[] = [];
  const waiting: ((r: Received) => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        url: req.url ?? '/',
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      };
      received.push(r);
      waiting.shift()?.(r);
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"sid":"SMreceiver"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    /** The next request, or a rejection if none comes within 10 s (a hang guard, not a timing check). */
    next: () =>
      new Promise<Received>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('nothing arrived')), 10_000);
        waiting.push((r) => (clearTimeout(timer), resolve(r)));
      }),
    close: () =>
      new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const failure = (o: SendOutcome) =>
  o.kind === 'failed' ? o : assert.fail(`expected a failure, got ${JSON.stringify(o)}`);

describe('sms provider against the sandbox Messages API', () => {
  let sandbox: LocalSandbox;
  let context: ProviderContext;
  let credentials: SmsCredentials;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const clients: ProviderClient[] = [];

  const client = (overrides: Partial<SmsCredentials> = {}): ProviderClient => {
    const checked = smsProvider.validate({ ...credentials, ...overrides });
    assert.ok(checked.ok, JSON.stringify(checked));
    const c = smsProvider.create(checked.credentials, context);
    clients.push(c);
    return c;
  };
  const fetchResource = async (sid: string) => {
    const auth = Buffer.from(`${SANDBOX_SMS_ACCOUNT.accountSid}:${SANDBOX_SMS_ACCOUNT.authToken}`).toString(
      'base64',
    );
    const res = await fetch(
      `${sandbox.endpoints.sms}/2010-04-01/Accounts/${SANDBOX_SMS_ACCOUNT.accountSid}/Messages/${sid}.json`,
      {
        headers: { authorization: `Basic ${auth}` },
      },
    );
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, unknown>;
  };

  before(async () => {
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [smsSandbox] });
    context = {
      clock: systemClock,
      logger: silentLogger,
      sandbox: sandbox.endpoints,
      allowPrivateTargets: false,
    };
    credentials = await smsSandboxCredentials(sandbox);
    receiver = await startReceiver();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox.close();
    await receiver.close();
  });

  it('posts the form Twilio expects with Basic auth and keeps the SID, segments and encoding', async () => {
    const outcome = await client().send(
      request(ANA, 'Your code is 123456 [valid 10 min] €'),
      AbortSignal.timeout(5000),
    );
    assert.equal(outcome.kind, 'sent');
    const { providerMessageId, details } = outcome;
    assert.match(providerMessageId ?? '', /^SM[0-9a-f]{32}$/);
    assert.deepEqual(details, { segments: 1, encoding: 'GSM-7' });
    const [received] = await sandbox.messages({ kind: 'sms', to: ANA, limit: 1 });
    assert.deepEqual(received?.body, {
      from: SANDBOX_SMS_ACCOUNT.from,
      messaging_service_sid: null,
      body: 'Your code is 123456 [valid 10 min] €',
      segments: 1,
      encoding: 'GSM-7',
      status_callback: null,
      validity_period: null,
    });
    assert.equal(received?.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(received?.headers.authorization, undefined, 'the sandbox never keeps the auth header');
    const resource = await fetchResource(providerMessageId!);
    assert.deepEqual(
      [resource.sid, resource.status, resource.to, resource.num_segments],
      [providerMessageId, 'queued', ANA, '1'],
    );
  });

  it('records a long emoji message as UCS-2 in as many segments as Herald counted', async () => {
    const body = `Olá 👋 ${'🎉'.repeat(40)}`; // 87 UTF-16 units: two 67-unit parts
    const outcome = await client().send(request(ANA, body), AbortSignal.timeout(5000));
    assert.deepEqual(outcome.kind === 'sent' && outcome.details, { segments: 2, encoding: 'UCS-2' });
    const [received] = await sandbox.messages({ kind: 'sms', to: ANA, limit: 1 });
    assert.deepEqual(
      [(received?.body as { segments: number }).segments, (received?.body as { encoding: string }).encoding],
      [2, 'UCS-2'],
    );
  });

  it('sends through a Messaging Service when one is configured instead of a number', async () => {
    const service = `MG${'ab'.repeat(16)}`;
    const c = client({ from: undefined, messaging_service_sid: service });
    const outcome = await c.send(request(ANA, 'hi'), AbortSignal.timeout(5000));
    assert.equal(outcome.kind, 'sent');
    const [received] = await sandbox.messages({ kind: 'sms', to: ANA, limit: 1 });
    assert.deepEqual(
      [
        (received?.body as { from: unknown }).from,
        (received?.body as { messaging_service_sid: unknown }).messaging_service_sid,
      ],
      [null, service],
    );
  });

  it('asks for a status callback that the provider posts, signed, to the configured URL', async () => {
    const callbackUrl = `${receiver.url}/sms/status?project=prj_test`;
    const arrival = receiver.next();
    const outcome = await client({ status_callback_url: callbackUrl }).send(
      request(ANA, 'Track me'),
      AbortSignal.timeout(5000),
    );
    assert.equal(outcome.kind, 'sent');
    const sid = outcome.providerMessageId!;
    const callback = await arrival;
    assert.equal(callback.url, '/sms/status?project=prj_test');
    assert.equal(callback.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.deepEqual(
      ['MessageSid', 'MessageStatus', 'To', 'From', 'AccountSid'].map((k) => callback.form.get(k)),
      [sid, 'delivered', ANA, SANDBOX_SMS_ACCOUNT.from, SANDBOX_SMS_ACCOUNT.accountSid],
    );
    const signature = String(callback.headers['x-twilio-signature']);
    assert.ok(verifyTwilioSignature(SANDBOX_SMS_ACCOUNT.authToken, callbackUrl, callback.form, signature));
    assert.ok(
      !verifyTwilioSignature('x'.repeat(32), callbackUrl, callback.form, signature),
      'another token does not verify',
    );
    assert.equal((await fetchResource(sid)).status, 'delivered');
  });

  it('maps Twilio 21610 (the number replied STOP) to an SMS unsubscribe', async () => {
    const to = '+14155550101';
    await sandbox.addBehavior({ kind: 'sms', to, status: 400, reason: '21610', times: 1 });
    const outcome = await client().send(request(to, 'promo'), AbortSignal.timeout(5000));
    assert.equal(outcome.kind, 'recipient-invalid');
    assert.deepEqual(outcome.kind === 'recipient-invalid' && [outcome.code, outcome.effect], [
      '21610',
      'unsubscribe-sms',
    ]);
    assert.equal((await sandbox.messages({ kind: 'sms', to })).length, 0, 'nothing was delivered');
  });

  it("fails permanently for an invalid or non-mobile 'To' (21211, 21614) and a body over 1,600 characters (21617)", async () => {
    const to = '+14155550102';
    for (const reason of ['21211', '21614']) {
      await sandbox.addBehavior({ kind: 'sms', to, status: 400, reason, times: 1 });
      const f = failure(await client().send(request(to, 'hi'), AbortSignal.timeout(5000)));
      assert.deepEqual([f.retryable, f.code], [false, reason]);
    }
    const tooLong = failure(await client().send(request(to, 'a'.repeat(1601)), AbortSignal.timeout(5000)));
    assert.deepEqual([tooLong.retryable, tooLong.code], [false, '21617']);
    assert.match(tooLong.message, /1600 character limit/);
  });

  it('retries a 429 after its Retry-After, and a 500', async () => {
    const to = '+14155550103';
    await sandbox.addBehavior({ kind: 'sms', to, status: 429, retryAfterSeconds: 7, times: 1 });
    const limited = failure(await client().send(request(to, 'hi'), AbortSignal.timeout(5000)));
    assert.deepEqual([limited.retryable, limited.code, limited.retryAfterMs], [true, '20429', 7000]);
    await sandbox.addBehavior({ kind: 'sms', to, status: 500, times: 1 });
    const broken = failure(await client().send(request(to, 'hi'), AbortSignal.timeout(5000)));
    assert.deepEqual([broken.retryable, broken.code], [true, '20500']);
    assert.equal(
      (await client().send(request(to, 'hi'), AbortSignal.timeout(5000))).kind,
      'sent',
      'the rules retired after one use',
    );
  });

  it('fails permanently with a wrong auth token (20003) and never repeats the token', async () => {
    const token = 'f'.repeat(32);
    const f = failure(
      await client({ auth_token: token }).send(request(ANA, 'hi'), AbortSignal.timeout(5000)),
    );
    assert.deepEqual([f.retryable, f.code], [false, '20003']);
    assert.ok(!f.message.includes(token));
  });

  it('refuses a recipient that is not an E.164 number without making a request', async () => {
    const c = client({ endpoint: receiver.url });
    const before = receiver.received.length;
    for (const to of ['4155550123', '+1 415 555 0123', '+1415555', 'ana@example.com', '']) {
      const f = failure(await c.send(request(to, 'hi'), AbortSignal.timeout(5000)));
      assert.deepEqual([f.retryable, f.code], [false, 'INVALID_PHONE_NUMBER'], to);
    }
    assert.equal(receiver.received.length, before, 'no request left Herald');
    assert.equal((await c.send(request(ANA, 'hi'), AbortSignal.timeout(5000))).kind, 'sent');
    assert.equal(receiver.received.length, before + 1, 'a valid number does reach the endpoint');
  });

  it('passes the remaining freshness as ValidityPeriod and never sends an expired message', async () => {
    const to = '+14155550104';
    assert.equal(
      (await client().send(request(to, 'soon', Date.now() + 60_000), AbortSignal.timeout(5000))).kind,
      'sent',
    );
    const [received] = await sandbox.messages({ kind: 'sms', to });
    const validity = (received?.body as { validity_period: number }).validity_period;
    assert.ok(validity > 0 && validity <= 60, `validity ${validity}`);
    const stale = failure(
      await client().send(request(to, 'late', Date.now() - 1), AbortSignal.timeout(5000)),
    );
    assert.deepEqual([stale.retryable, stale.code], [false, 'EXPIRED']);
    assert.equal((await sandbox.messages({ kind: 'sms', to })).length, 1);
  });

  it('retries when the provider hangs past the timeout or cannot be reached', async () => {
    const to = '+14155550105';
    await sandbox.addBehavior({ kind: 'sms', to, hang: true, times: 1 });
    const hung = failure(
      await client({ timeout_ms: 300 }).send(request(to, 'hi'), AbortSignal.timeout(5000)),
    );
    assert.deepEqual([hung.retryable, hung.code], [true, 'TIMEOUT']);
    const closed = await startReceiver();
    await closed.close(); // nothing listens on this port any more
    const refused = failure(
      await client({ endpoint: closed.url }).send(request(to, 'hi'), AbortSignal.timeout(5000)),
    );
    assert.deepEqual([refused.retryable, refused.code], [true, 'ECONNREFUSED']);
  });
});
