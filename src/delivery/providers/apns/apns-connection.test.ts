import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/logger.ts';
import { createApnsSandbox } from '../../../sandbox/apns/apns-sandbox.ts';
import { apnsSandboxCredentials } from '../../../sandbox/apns/apns-sandbox-credentials.ts';
import { startSandbox, type LocalSandbox } from '../../../sandbox/sandbox.ts';
import type { DeliveryRequest } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext } from '../../provider.ts';
import { apnsProvider, createApnsClient, type ApnsClientOptions, type ApnsCredentials } from './apns-provider.ts';

const deviceToken = (): string => randomBytes(32).toString('hex');

function push(to: string): DeliveryRequest {
  return {
    messageId: randomUUID(),
    projectId: 'prj_test',
    channel: 'push',
    platform: 'ios',
    to,
    content: { title: 'Hello', body: 'World' },
    category: 'transactional',
    expiresAt: null,
    attempt: 1,
  };
}

describe('APNs provider connection handling', () => {
  let sandbox: LocalSandbox;
  let context: ProviderContext;
  let credentials: ApnsCredentials;
  /** HTTP/2 connections the stand-in has accepted. */
  let accepted = 0;
  const clients: ProviderClient[] = [];
  const client = (options: ApnsClientOptions = {}, creds: ApnsCredentials = credentials): ProviderClient => {
    const c = createApnsClient(creds, context, options);
    clients.push(c);
    return c;
  };

  before(async () => {
    // A low stream limit, so that many concurrent sends must queue on the one connection.
    const service = createApnsSandbox({ maxConcurrentStreams: 50, onSession: () => accepted++ });
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [service] });
    context = { clock: systemClock, logger: silentLogger, sandbox: sandbox.endpoints, allowPrivateTargets: false };
    const checked = apnsProvider.validate(await apnsSandboxCredentials(sandbox));
    assert.ok(checked.ok);
    credentials = checked.credentials;
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox.close();
  });

  it('sends many notifications at once over one HTTP/2 connection, each delivered once', async () => {
    const c = client();
    const before = accepted;
    const requests = Array.from({ length: 400 }, () => push(deviceToken()));
    const outcomes = await Promise.all(requests.map((r) => c.send(r, AbortSignal.timeout(20_000))));
    assert.deepEqual(new Set(outcomes.map((o) => o.kind)), new Set(['sent']));
    assert.equal(accepted - before, 1, 'one connection carried every stream');
    const ids = new Set<string>();
    for (const r of requests) {
      const received = await sandbox.messages({ kind: 'apns', to: r.to });
      assert.equal(received.length, 1);
      ids.add(received[0]!.headers['apns-id']!);
    }
    assert.deepEqual(ids, new Set(requests.map((r) => r.messageId)));
  });

  it('spreads requests over several connections when asked, each notification delivered once', async () => {
    const c = client({ connections: 3 });
    const before = accepted;
    const requests = Array.from({ length: 300 }, () => push(deviceToken()));
    const outcomes = await Promise.all(requests.map((r) => c.send(r, AbortSignal.timeout(20_000))));
    assert.deepEqual(new Set(outcomes.map((o) => o.kind)), new Set(['sent']));
    assert.equal(accepted - before, 3, 'three connections');
    for (const r of requests) assert.equal((await sandbox.messages({ kind: 'apns', to: r.to })).length, 1);
  });

  it('the provider opens one connection per 1,000 streams of its concurrency limit', async () => {
    const before = accepted;
    const c = apnsProvider.create(credentials, context, { ratePerSecond: 20_000, maxConcurrency: 2_000 });
    clients.push(c);
    const requests = Array.from({ length: 120 }, () => push(deviceToken()));
    const outcomes = await Promise.all(requests.map((r) => c.send(r, AbortSignal.timeout(20_000))));
    assert.deepEqual(new Set(outcomes.map((o) => o.kind)), new Set(['sent']));
    assert.equal(accepted - before, 2);
  });

  it('reconnects after APNs shuts the connection down (503 Shutdown, then GOAWAY)', async () => {
    const c = client();
    assert.equal((await c.send(push(deviceToken()), AbortSignal.timeout(5000))).kind, 'sent');
    const before = accepted;
    const to = deviceToken();
    await sandbox.addBehavior({ kind: 'apns', to, status: 503, reason: 'Shutdown', times: 1 });
    const shut = await c.send(push(to), AbortSignal.timeout(5000));
    assert.deepEqual(shut.kind === 'failed' && [shut.retryable, shut.code], [true, 'Shutdown']);
    const retried = push(to);
    assert.equal((await c.send(retried, AbortSignal.timeout(5000))).kind, 'sent');
    assert.equal(accepted - before, 1, 'the retry went over a new connection');
    assert.equal((await sandbox.messages({ kind: 'apns', to }))[0]?.headers['apns-id'], retried.messageId);
  });

  it('gives up on a hanging answer when the caller aborts, and keeps the connection for the next send', async () => {
    const c = client();
    assert.equal((await c.send(push(deviceToken()), AbortSignal.timeout(5000))).kind, 'sent');
    const before = accepted;
    const to = deviceToken();
    await sandbox.addBehavior({ kind: 'apns', to, hang: true, times: 1 });
    const hung = await c.send(push(to), AbortSignal.timeout(300));
    assert.deepEqual(hung.kind === 'failed' && [hung.retryable, hung.code], [true, 'TIMEOUT']);
    assert.equal((await c.send(push(to), AbortSignal.timeout(5000))).kind, 'sent');
    assert.equal(accepted, before, 'only the stream was cancelled, not the connection');
  });

  it('aborts every send sharing one signal (a shutdown) without piling listeners onto it', async () => {
    const c = client();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const shutdown = new AbortController();
      const tokens = Array.from({ length: 30 }, () => deviceToken());
      for (const to of tokens) await sandbox.addBehavior({ kind: 'apns', to, hang: true, times: 1 });
      const pending = tokens.map((to) => c.send(push(to), shutdown.signal));
      await new Promise((resolve) => setTimeout(resolve, 100));
      shutdown.abort();
      const outcomes = await Promise.all(pending);
      assert.deepEqual(new Set(outcomes.map((o) => o.kind === 'failed' && o.retryable && o.code)), new Set(['TIMEOUT']));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings, [], 'no MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('gives up on a stream that stays silent past its timeout', async () => {
    const c = client({ streamTimeoutMs: 300 });
    const to = deviceToken();
    await sandbox.addBehavior({ kind: 'apns', to, hang: true, times: 1 });
    const hung = await c.send(push(to), AbortSignal.timeout(10_000));
    assert.deepEqual(hung.kind === 'failed' && [hung.retryable, hung.code], [true, 'TIMEOUT']);
    assert.equal((await sandbox.messages({ kind: 'apns', to })).length, 0);
  });

  it('reports an unreachable endpoint as a retryable network failure', async () => {
    const gone = await startSandbox({ clock: systemClock, logger: silentLogger, services: [createApnsSandbox()] });
    const endpoint = gone.endpoints.apns!;
    await gone.close();
    const c = client({}, { ...credentials, endpoint });
    const outcome = await c.send(push(deviceToken()), AbortSignal.timeout(5000));
    assert.equal(outcome.kind, 'failed');
    assert.equal(outcome.kind === 'failed' && outcome.retryable, true);
    assert.equal(outcome.kind === 'failed' && outcome.code, 'ECONNREFUSED');
  });

  it('answers every send after close with a retryable failure instead of reconnecting', async () => {
    const c = client();
    assert.equal((await c.send(push(deviceToken()), AbortSignal.timeout(5000))).kind, 'sent');
    await c.close();
    const before = accepted;
    const outcome = await c.send(push(deviceToken()), AbortSignal.timeout(5000));
    assert.deepEqual(outcome.kind === 'failed' && [outcome.retryable, outcome.code], [true, 'CLIENT_CLOSED']);
    assert.equal(accepted, before);
  });
});
