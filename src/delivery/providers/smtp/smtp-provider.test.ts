import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import type { SandboxMessage } from '../../../sandbox/sandbox-model.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import { smtpSandboxCredentials } from '../../../sandbox/smtp/smtp-sandbox-credentials.ts';
import { smtpSandbox } from '../../../sandbox/smtp/smtp-sandbox.ts';
import type { DeliveryRequest, EmailContent, SendOutcome } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { smtpProvider } from './smtp-provider.ts';

const HTML =
  '<h1>Hello Ana</h1><p>Your order <b>#1042</b> has shipped.</p><p><a href="https://shop.example/track/1042">Track it</a></p>';

function email(
  to: string,
  overrides: Partial<DeliveryRequest> = {},
  content: Partial<EmailContent> = {},
): DeliveryRequest {
  return {
    messageId: randomUUID(),
    projectId: 'prj_test',
    channel: 'email',
    to,
    content: { subject: 'Your order has shipped', html: HTML, ...content },
    category: 'transactional',
    expiresAt: null,
    attempt: 1,
    ...overrides,
  };
}

const send = (client: ProviderClient, request: DeliveryRequest): Promise<SendOutcome> =>
  client.send(request, AbortSignal.timeout(20_000));

/** Starts an SMTP sandbox and hands out provider clients that are all closed at the end. */
function harness() {
  const state = {
    sandbox: undefined as unknown as LocalSandbox,
    context: undefined as unknown as ProviderContext,
    clients: [] as ProviderClient[],
    client(credentials: unknown): ProviderClient {
      const checked = smtpProvider.validate(credentials);
      assert.ok(checked.ok, JSON.stringify(checked));
      const c = smtpProvider.create(checked.credentials, state.context);
      state.clients.push(c);
      return c;
    },
    async only(to: string): Promise<SandboxMessage> {
      const messages = await state.sandbox.messages({ kind: 'smtp', to });
      assert.equal(messages.length, 1, `exactly one message for ${to} arrived`);
      return messages[0]!;
    },
  };
  before(async () => {
    state.sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [smtpSandbox] });
    state.context = {
      clock: systemClock,
      logger: silentLogger,
      sandbox: state.sandbox.endpoints,
      allowPrivateTargets: false,
    };
  });
  after(async () => {
    await Promise.all(state.clients.map((c) => c.close()));
    await state.sandbox.close();
  });
  return state;
}

describe('smtp provider against the sandbox SMTP server', () => {
  const h = harness();
  let client: ProviderClient;
  before(async () => {
    client = h.client(await smtpSandboxCredentials(h.sandbox));
  });

  it('delivers HTML with a generated text part, the sender, and a Message-ID made from the message id', async () => {
    const request = email('ana@example.com');
    const outcome = await send(client, request);
    assert.equal(outcome.kind, 'sent');
    const received = await h.only('ana@example.com');
    const body = received.body as {
      subject: string;
      html: string;
      text: string;
      from: string;
      queueId: string;
    };
    // The stand-in answers "250 OK: queued as <id>"; the provider keeps that id.
    assert.equal(outcome.kind === 'sent' && outcome.providerMessageId, body.queueId);
    assert.equal(body.subject, 'Your order has shipped');
    assert.equal(body.html, HTML);
    assert.equal(
      body.text,
      'Hello Ana\n\nYour order #1042 has shipped.\n\nTrack it (https://shop.example/track/1042)',
    );
    assert.equal(body.from, 'demo@sandbox.herald.invalid');
    assert.equal(received.headers.from, '"Herald Demo" <demo@sandbox.herald.invalid>');
    assert.equal(received.headers['message-id'], `<${request.messageId}@sandbox.herald.invalid>`);
    assert.match(received.headers['content-type'] ?? '', /^multipart\/alternative/);
    assert.equal(received.headers['list-unsubscribe'], undefined);
  });

  it("uses the message's own text part, sender and Reply-To, and keeps a non-ASCII subject intact", async () => {
    const request = email(
      'bruno@example.com',
      {},
      {
        subject: 'Votre commande est expédiée ✓',
        text: 'Written by hand.',
        from: { email: 'orders@shop.example', name: 'Boutique Élan' },
        replyTo: 'help@shop.example',
      },
    );
    assert.equal((await send(client, request)).kind, 'sent');
    const received = await h.only('bruno@example.com');
    const body = received.body as { subject: string; text: string; from: string };
    assert.equal(body.subject, 'Votre commande est expédiée ✓');
    assert.equal(body.text, 'Written by hand.');
    assert.equal(body.from, 'orders@shop.example');
    assert.equal(received.headers['reply-to'], 'help@shop.example');
    assert.equal(received.headers['message-id'], `<${request.messageId}@shop.example>`);
  });

  it('puts RFC 8058 one-click unsubscribe headers on marketing mail only', async () => {
    const url = 'https://herald.example/u/abc?t=1';
    assert.equal(
      (await send(client, email('m1@example.com', { category: 'marketing', unsubscribeUrl: url }))).kind,
      'sent',
    );
    assert.equal(
      (await send(client, email('t1@example.com', { category: 'transactional', unsubscribeUrl: url }))).kind,
      'sent',
    );
    assert.equal(
      (
        await send(
          client,
          email('m2@example.com', { category: 'marketing', unsubscribeUrl: 'http://herald.example/u/abc' }),
        )
      ).kind,
      'sent',
    );
    const marketing = await h.only('m1@example.com');
    assert.equal(marketing.headers['list-unsubscribe'], `<${url}>`);
    assert.equal(marketing.headers['list-unsubscribe-post'], 'List-Unsubscribe=One-Click');
    const transactional = await h.only('t1@example.com');
    assert.equal(transactional.headers['list-unsubscribe'], undefined);
    assert.equal(transactional.headers['list-unsubscribe-post'], undefined);
    // RFC 8058 requires an https URI; a plain http one gets neither header.
    const insecure = await h.only('m2@example.com');
    assert.equal(insecure.headers['list-unsubscribe'], undefined);
    assert.equal(insecure.headers['list-unsubscribe-post'], undefined);
  });

  it('turns a 550 for one recipient into a hard bounce, and leaves other recipients alone', async () => {
    await h.sandbox.addBehavior({
      kind: 'smtp',
      to: 'gone@example.com',
      status: 550,
      reason: '5.1.1 <gone@example.com>: Recipient address rejected: User unknown',
    });
    const bounced = await send(client, email('gone@example.com'));
    assert.equal(bounced.kind, 'recipient-invalid');
    assert.equal(bounced.kind === 'recipient-invalid' && bounced.effect, 'suppress-address');
    assert.equal(bounced.kind === 'recipient-invalid' && bounced.code, 'SMTP_550');
    assert.match(bounced.kind === 'recipient-invalid' ? bounced.message : '', /User unknown/);
    assert.equal(
      (await send(client, email('still-here@example.com'))).kind,
      'sent',
      'the same pooled client keeps delivering',
    );
    assert.deepEqual(await h.sandbox.messages({ kind: 'smtp', to: 'gone@example.com' }), []);
  });

  it('does not suppress an address for a policy refusal (5.7.x) at RCPT TO', async () => {
    await h.sandbox.addBehavior({
      kind: 'smtp',
      to: 'policy@example.com',
      status: 550,
      reason: '5.7.1 Relay access denied',
      times: 1,
    });
    const refused = await send(client, email('policy@example.com'));
    assert.deepEqual(
      [
        refused.kind,
        refused.kind === 'failed' && refused.retryable,
        refused.kind === 'failed' && refused.code,
      ],
      ['failed', false, 'SMTP_550'],
    );
  });

  it('retries a 451 deferral, and the retry goes through', async () => {
    await h.sandbox.addBehavior({ kind: 'smtp', to: 'busy@example.com', status: 451, times: 1 });
    const deferred = await send(client, email('busy@example.com'));
    assert.equal(deferred.kind, 'failed');
    assert.equal(deferred.kind === 'failed' && deferred.retryable, true);
    assert.equal(deferred.kind === 'failed' && deferred.code, 'SMTP_451');
    assert.equal((await send(client, email('busy@example.com'))).kind, 'sent');
    assert.equal((await h.sandbox.messages({ kind: 'smtp', to: 'busy@example.com' })).length, 1);
  });

  it('fails permanently on a 554 answer to the message (DATA), without suppressing the address', async () => {
    await h.sandbox.addBehavior({
      kind: 'smtp',
      to: 'spamtrap@example.com',
      status: 554,
      reason: '5.7.1 Message rejected as spam',
      times: 1,
    });
    const rejected = await send(client, email('spamtrap@example.com'));
    assert.equal(rejected.kind, 'failed');
    assert.equal(rejected.kind === 'failed' && rejected.retryable, false);
    assert.equal(rejected.kind === 'failed' && rejected.code, 'SMTP_554');
    assert.match(rejected.kind === 'failed' ? rejected.message : '', /DATA.*rejected as spam/);
    assert.deepEqual(await h.sandbox.messages({ kind: 'smtp', to: 'spamtrap@example.com' }), []);
  });

  it('gives up on a server that never answers RCPT TO, reports a retryable timeout, and the pool recovers', async () => {
    const impatient = h.client({ ...(await smtpSandboxCredentials(h.sandbox)), timeout_ms: 1_000 });
    await h.sandbox.addBehavior({ kind: 'smtp', to: 'slow@example.com', hang: true, times: 1 });
    const hung = await send(impatient, email('slow@example.com'));
    assert.deepEqual(
      [hung.kind, hung.kind === 'failed' && hung.retryable, hung.kind === 'failed' && hung.code],
      ['failed', true, 'TIMEOUT'],
    );
    assert.equal((await send(impatient, email('slow@example.com'))).kind, 'sent');
  });

  it('reuses pooled connections: one for sequential sends, at most maxConcurrency for a burst', async () => {
    const pooled = h.client(await smtpSandboxCredentials(h.sandbox));
    const sequential: string[] = [];
    for (let i = 0; i < 15; i++) {
      const to = `seq-${i}@example.com`;
      assert.equal((await send(pooled, email(to))).kind, 'sent');
      sequential.push(((await h.only(to)).body as { session: string }).session);
    }
    assert.equal(new Set(sequential).size, 1, 'fifteen messages, one connection');

    const burst = Array.from({ length: 60 }, (_, i) => `burst-${i}@example.com`);
    const outcomes = await Promise.all(burst.map((to) => send(pooled, email(to))));
    assert.deepEqual(new Set(outcomes.map((o) => o.kind)), new Set(['sent']));
    const sessions = new Set<string>();
    for (const to of burst) sessions.add(((await h.only(to)).body as { session: string }).session);
    assert.ok(
      sessions.size <= smtpProvider.limits.maxConcurrency,
      `${sessions.size} connections for 60 messages`,
    );
    assert.ok(sessions.size < burst.length);
  });
});

describe('smtp provider with SMTP AUTH', () => {
  const h = harness();
  const user = { username: 'herald-app', password: 'correct horse battery staple' };

  it('authenticates with the registered user and password', async () => {
    const client = h.client(await smtpSandboxCredentials(h.sandbox, { user }));
    assert.equal((await send(client, email('authed@example.com'))).kind, 'sent');
    assert.equal((await h.sandbox.messages({ kind: 'smtp', to: 'authed@example.com' })).length, 1);
  });

  it('fails permanently on a wrong password (535), and the outcome never repeats the password', async () => {
    await h.sandbox.trust('smtp', user.username, { password: user.password });
    const client = h.client({
      ...(await smtpSandboxCredentials(h.sandbox)),
      username: user.username,
      password: 'wrong password',
    });
    const outcome = await send(client, email('nope@example.com'));
    assert.deepEqual(
      [
        outcome.kind,
        outcome.kind === 'failed' && outcome.retryable,
        outcome.kind === 'failed' && outcome.code,
      ],
      ['failed', false, 'SMTP_535'],
    );
    assert.doesNotMatch(JSON.stringify(outcome), /wrong password|correct horse/);
    assert.deepEqual(await h.sandbox.messages({ kind: 'smtp', to: 'nope@example.com' }), []);
  });

  it('fails permanently when the server requires AUTH and none is configured (530)', async () => {
    await h.sandbox.trust('smtp', user.username, { password: user.password });
    const client = h.client(await smtpSandboxCredentials(h.sandbox));
    const outcome = await send(client, email('anon@example.com'));
    assert.deepEqual([outcome.kind, outcome.kind === 'failed' && outcome.code], ['failed', 'SMTP_530']);
  });

  it('never sends a password in clear text: with a password, a server without STARTTLS is refused', async () => {
    const { port } = new URL(h.sandbox.endpoints.smtp!);
    const client = h.client({
      host: '127.0.0.1',
      port: Number(port),
      from: { email: 'app@example.com' },
      ...user,
    });
    const outcome = await send(client, email('cleartext@example.com'));
    assert.equal(outcome.kind, 'failed');
    assert.equal(outcome.kind === 'failed' && outcome.retryable, false, JSON.stringify(outcome));
    assert.deepEqual(await h.sandbox.messages({ kind: 'smtp', to: 'cleartext@example.com' }), []);
  });
});

describe('smtp provider without a server', () => {
  it('reports a server that is down as retryable', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(p));
      });
    });
    const checked = smtpProvider.validate({ host: '127.0.0.1', port, from: { email: 'app@example.com' } });
    assert.ok(checked.ok);
    const context = { clock: systemClock, logger: silentLogger, sandbox: {}, allowPrivateTargets: false };
    const client = smtpProvider.create(checked.credentials, context);
    try {
      const outcome = await send(client, email('x@example.com'));
      assert.equal(outcome.kind, 'failed');
      assert.equal(outcome.kind === 'failed' && outcome.retryable, true, JSON.stringify(outcome));
      assert.match(outcome.kind === 'failed' ? outcome.code : '', /^(ESOCKET|ECONNECTION)$/);
    } finally {
      await client.close();
    }
  });
});
