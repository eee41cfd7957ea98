import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import { webhookSandbox } from '../../../sandbox/webhook/webhook-sandbox.ts';
import type { DeliveryRequest } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { newWebhookSecret, webhookProvider, type WebhookCredentials } from './webhook-provider.ts';

function request(to: string, data: Record<string, unknown> = { hello: 'world' }): DeliveryRequest {
  return {
    messageId: randomUUID(),
    projectId: 'prj_test',
    channel: 'webhook',
    to,
    content: { type: 'message', data },
    category: 'transactional',
    expiresAt: null,
    attempt: 1,
  };
}

describe('webhook provider against the sandbox receiver', () => {
  let sandbox: LocalSandbox;
  let context: ProviderContext;
  const secret = newWebhookSecret();
  const clients: ProviderClient[] = [];

  const client = (credentials: Partial<WebhookCredentials> & { url: string }): ProviderClient => {
    const checked = webhookProvider.validate({ secret, ...credentials });
    assert.ok(checked.ok, JSON.stringify(checked));
    const c = webhookProvider.create(checked.credentials, context);
    clients.push(c);
    return c;
  };

  before(async () => {
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [webhookSandbox] });
    context = { clock: systemClock, logger: silentLogger, sandbox: sandbox.endpoints, allowPrivateTargets: false };
    await sandbox.trust('webhook', `${sandbox.endpoints.webhook}/hooks/ok`, { secret });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox.close();
  });

  it('delivers a signed Standard Webhooks request that the receiver verifies', async () => {
    const c = client({ url: 'sandbox:/hooks/ok' });
    const req = request(`${sandbox.endpoints.webhook}/hooks/ok`, { order: 'o-1', total: 30 });
    const outcome = await c.send(req, AbortSignal.timeout(5000));
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: null });
    const [received] = await sandbox.messages({ kind: 'webhook' });
    assert.equal(received?.to, `${sandbox.endpoints.webhook}/hooks/ok`);
    assert.equal(received?.headers['webhook-id'], req.messageId);
    assert.match(received?.headers['webhook-signature'] ?? '', /^v1,/);
    assert.deepEqual((received?.body as { type: string; data: unknown }).data, { order: 'o-1', total: 30 });
    assert.equal((received?.body as { type: string }).type, 'message');
  });

  it('fails permanently when the receiver rejects the signature (a wrong secret)', async () => {
    const c = webhookProvider.create({ url: 'sandbox:/hooks/ok', secret: newWebhookSecret() }, context);
    clients.push(c);
    const outcome = await c.send(request('x'), AbortSignal.timeout(5000));
    assert.equal(outcome.kind, 'failed');
    assert.equal(outcome.kind === 'failed' && outcome.retryable, false);
    assert.equal(outcome.kind === 'failed' && outcome.code, 'HTTP_401');
  });

  it('maps 410 to a disabled endpoint, 429 to a retry after Retry-After, 500 to a retry, a redirect to a failure', async () => {
    const url = `${sandbox.endpoints.webhook}/hooks/ok`;
    const c = client({ url: 'sandbox:/hooks/ok' });
    await sandbox.addBehavior({ kind: 'webhook', to: url, status: 410, times: 1 });
    assert.deepEqual(await c.send(request(url), AbortSignal.timeout(5000)), {
      kind: 'recipient-invalid',
      code: 'GONE',
      message: 'the endpoint answered 410 Gone: it asked to be removed',
      effect: 'disable-endpoint',
    });
    await sandbox.addBehavior({ kind: 'webhook', to: url, status: 429, retryAfterSeconds: 7, times: 1 });
    const limited = await c.send(request(url), AbortSignal.timeout(5000));
    assert.equal(limited.kind === 'failed' && limited.retryable, true);
    assert.equal(limited.kind === 'failed' && limited.retryAfterMs, 7000);
    await sandbox.addBehavior({ kind: 'webhook', to: url, status: 500, times: 1 });
    const broken = await c.send(request(url), AbortSignal.timeout(5000));
    assert.equal(broken.kind === 'failed' && broken.retryable, true);
    await sandbox.addBehavior({ kind: 'webhook', to: url, status: 302, times: 1 });
    const moved = await c.send(request(url), AbortSignal.timeout(5000));
    assert.equal(moved.kind === 'failed' && moved.retryable, false);
    assert.equal((await c.send(request(url), AbortSignal.timeout(5000))).kind, 'sent', 'the rules retired after one use');
  });

  it('gives up on a receiver that hangs and reports a retryable timeout', async () => {
    const url = `${sandbox.endpoints.webhook}/hooks/ok`;
    const c = client({ url: 'sandbox:/hooks/ok', timeout_ms: 300 });
    await sandbox.addBehavior({ kind: 'webhook', to: url, hang: true, times: 1 });
    const outcome = await c.send(request(url), AbortSignal.timeout(5000));
    assert.equal(outcome.kind, 'failed');
    assert.equal(outcome.kind === 'failed' && outcome.retryable, true);
    assert.equal(outcome.kind === 'failed' && outcome.code, 'TIMEOUT');
  });

  it('refuses private and loopback targets unless the project allows them', async () => {
    const loopback = `${sandbox.endpoints.webhook}/hooks/ok`;
    const refused = webhookProvider.validate({ url: loopback, secret });
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.problems[0]?.code, 'PRIVATE_TARGET');
    // A name that resolves to loopback is refused when connecting, not only when saved.
    const sneaky = webhookProvider.create({ url: loopback.replace('127.0.0.1', 'localhost'), secret }, context);
    clients.push(sneaky);
    const outcome = await sneaky.send(request(loopback), AbortSignal.timeout(5000));
    assert.equal(outcome.kind === 'failed' && outcome.code, 'PRIVATE_TARGET');
    const allowed = client({ url: loopback, allow_private_targets: true });
    assert.equal((await allowed.send(request(loopback), AbortSignal.timeout(5000))).kind, 'sent');
  });

  it('refuses malformed credentials with the path of each problem', () => {
    const result = webhookProvider.validate({ url: 'ftp://example.com/x', secret: 'not-a-secret' });
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.problems.map((p) => [p.path, p.code]), [
      ['/url', 'INVALID_URL'],
      ['/secret', 'INVALID_SECRET'],
    ]);
  });
});
