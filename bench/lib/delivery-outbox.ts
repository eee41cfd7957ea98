/**
 * In-process measurements that split Herald's push rate into its parts, with Herald's own code
 * (DESIGN.md §8: the bound next to the figure):
 *  - outboxRawRun: the outbox's SQL bound — Herald's SqliteCellStore (same schema, pragmas,
 *    statements: claimMessages / settleMessages) claiming and settling `batch` messages per
 *    transaction, no provider;
 *  - dispatcherRun: Herald's Dispatcher as the delivery thread builds it (default options) over
 *    that store, with a provider that answers "sent" at once — how many messages each claim and
 *    each settle transaction carries, and the rate the dispatcher's own loop allows;
 *  - apnsClientRun: Herald's APNs provider client (createApnsClient: ApnsConnection, token
 *    signer, payload builder, answer mapping) sending straight to the stand-in, a fixed window of
 *    sends in flight — the provider without the outbox.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { systemClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { DeliveryRequest, SendOutcome } from '../../src/delivery/delivery-model.ts';
import { Dispatcher } from '../../src/delivery/dispatcher.ts';
import { apnsProvider, createApnsClient } from '../../src/delivery/providers/apns/apns-provider.ts';
import type { ApnsCredentials } from '../../src/delivery/providers/apns/apns-credentials.ts';
import type { MessageUpdate, OutboxMessage, OutboxStore } from '../../src/storage/outbox-port.ts';
import { INSERT_MESSAGE_SQL, messageParams } from '../../src/storage/sql-outbox.ts';
import { SqliteCellStore } from '../../src/storage/sqlite/sqlite-cell-store.ts';

const PUSH_CONTENT = { title: 'Hello from Herald', body: 'Your order has shipped and will arrive tomorrow.' };

/** A fresh cell store (Herald's migrations) holding `n` queued iOS push messages. */
async function storeWithQueue(dir: string, n: number): Promise<SqliteCellStore> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'store.db');
  const store = await SqliteCellStore.open(file, { create: true });
  const db = new Database(file);
  const insert = db.prepare(INSERT_MESSAGE_SQL);
  const now = Date.now();
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      insert.run(
        ...messageParams({
          id: randomUUID(),
          projectId: 'prj_bench',
          sendId: 'snd_bench',
          idempotencyKey: `snd_bench:${i}`,
          channel: 'push',
          category: 'transactional',
          lane: 0,
          customId: `p${i}`,
          installId: `i${i}`,
          platform: 'ios',
          recipient: randomBytes(32).toString('hex'),
          webPush: null,
          content: PUSH_CONTENT,
          state: 'queued',
          reason: null,
          errorCode: null,
          expiresAt: null,
          createdAt: now,
        }),
      );
    }
  })();
  db.close();
  return store;
}

function sentUpdate(m: OutboxMessage, owner: string): MessageUpdate {
  const update = {
    id: m.id,
    owner,
    target: { projectId: m.projectId, channel: m.channel, customId: m.customId, installId: m.installId, recipient: m.recipient },
    state: 'sent' as const,
    reason: null,
    errorCode: null,
    providerKind: 'apns',
    providerMessageId: randomUUID(),
    details: null,
    at: Date.now(),
    // The attempt this claim made (the outbox checks it so a stale outcome cannot land on a newer claim).
    claimedAttempt: m.attempts,
  };
  return update;
}

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Claim `batch`, settle them as sent, repeat: the outbox's SQL cost per message at that batch size. */
export async function outboxRawRun(dir: string, n: number, batch: number): Promise<Record<string, number>> {
  const store = await storeWithQueue(dir, n);
  try {
    let done = 0;
    let claimMs = 0;
    let settleMs = 0;
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    while (done < n) {
      const c = performance.now();
      const claimed = await store.claimMessages('bench', Date.now(), 60_000, batch);
      const s = performance.now();
      await store.settleMessages(claimed.map((m) => sentUpdate(m, 'bench')));
      settleMs += performance.now() - s;
      claimMs += s - c;
      if (claimed.length === 0) throw new Error('the outbox ran dry early');
      done += claimed.length;
    }
    const elapsed = performance.now() - t0;
    return {
      messages: n,
      batch,
      per_s: Math.round((n / elapsed) * 1000),
      claim_us_per_message: Math.round((claimMs * 1000) / n),
      settle_us_per_message: Math.round((settleMs * 1000) / n),
      cpu_us_per_message: Math.round(((cpuSeconds() - cpu0) * 1e6) / n),
    };
  } finally {
    await store.close();
  }
}

/**
 * Herald's Dispatcher (default options, as the delivery thread creates it, lease 60 s) over a
 * store with `n` queued messages and a provider that answers "sent" on the next turn of the event
 * loop. Counts the claim and settle transactions and how many messages each carried.
 */
export async function dispatcherRun(dir: string, n: number, timeoutMs: number): Promise<Record<string, unknown>> {
  const store = await storeWithQueue(dir, n);
  const counts = { claims: 0, claimed: 0, claimMs: 0, settles: 0, settled: 0, settleMs: 0 };
  // Every other method goes to the store itself (bound, for its private fields).
  const wrapped: Partial<OutboxStore> = {
    async claimMessages(owner, nowMs, leaseMs, limit) {
      const t = performance.now();
      const rows = await store.claimMessages(owner, nowMs, leaseMs, limit);
      counts.claimMs += performance.now() - t;
      counts.claims++;
      counts.claimed += rows.length;
      return rows;
    },
    async settleMessages(updates) {
      const t = performance.now();
      const result = await store.settleMessages(updates);
      counts.settleMs += performance.now() - t;
      counts.settles++;
      counts.settled += updates.length;
      return result;
    },
  };
  const outbox = new Proxy(store, {
    get(target, property) {
      const own = (wrapped as Record<string | symbol, unknown>)[property];
      if (own !== undefined) return own;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as OutboxStore;
  const instant = {
    send: (): Promise<SendOutcome> => new Promise((resolve) => setImmediate(() => resolve({ kind: 'sent', providerMessageId: null }))),
    close: () => Promise.resolve(),
  };
  const dispatcher = new Dispatcher({
    store: outbox,
    resolver: {
      resolve: () => ({ kind: 'apns', client: instant, limits: apnsProvider.limits, version: 'bench' }),
      disable: () => Promise.resolve(),
    },
    clock: systemClock,
    logger: silentLogger,
    owner: 'bench',
    leaseMs: 60_000,
  });
  const controller = new AbortController();
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const running = dispatcher.run(controller.signal);
  while (dispatcher.stats.sent < n && performance.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 20));
  const elapsed = performance.now() - t0;
  const sent = dispatcher.stats.sent;
  const cpu = cpuSeconds() - cpu0;
  controller.abort();
  await running;
  await store.close();
  return {
    messages: n,
    sent,
    complete: sent >= n,
    per_s: Math.round((sent / elapsed) * 1000),
    cpu_us_per_message: Math.round((cpu * 1e6) / Math.max(1, sent)),
    claim_transactions: counts.claims,
    messages_per_claim: Math.round((counts.claimed / Math.max(1, counts.claims)) * 10) / 10,
    claim_us_per_message: Math.round((counts.claimMs * 1000) / Math.max(1, sent)),
    settle_transactions: counts.settles,
    messages_per_settle: Math.round((counts.settled / Math.max(1, counts.settles)) * 10) / 10,
    settle_us_per_message: Math.round((counts.settleMs * 1000) / Math.max(1, sent)),
  };
}

/** Herald's APNs provider client straight to the stand-in: `count` sends, `window` in flight. */
export async function apnsClientRun(options: {
  credentials: ApnsCredentials;
  standIn: string;
  tokens: readonly string[];
  count: number;
  window: number;
}): Promise<Record<string, unknown>> {
  const client = createApnsClient(options.credentials, { clock: systemClock, logger: silentLogger, sandbox: { apns: options.standIn }, allowPrivateTargets: true });
  const outcomes: Record<string, number> = {};
  let started = 0;
  let finished = 0;
  let sent = 0;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const launch = (): void => {
      const i = started++;
      const request: DeliveryRequest = {
        messageId: randomUUID(),
        projectId: 'prj_bench',
        channel: 'push',
        to: options.tokens[i % options.tokens.length]!,
        platform: 'ios',
        content: PUSH_CONTENT,
        category: 'transactional',
        expiresAt: null,
        attempt: 1,
      };
      void client.send(request, AbortSignal.timeout(30_000)).then(
        (outcome) => {
          if (outcome.kind === 'sent') sent++;
          else outcomes[outcome.code] = (outcomes[outcome.code] ?? 0) + 1;
        },
        () => {
          outcomes.THROWN = (outcomes.THROWN ?? 0) + 1;
        },
      ).finally(() => {
        finished++;
        if (started < options.count) launch();
        else if (finished === options.count) resolve();
      });
    };
    for (let i = 0; i < Math.min(options.window, options.count); i++) launch();
  });
  const elapsed = performance.now() - t0;
  const cpu = cpuSeconds() - cpu0;
  await client.close();
  return {
    messages: options.count,
    sent,
    errors: outcomes,
    window: options.window,
    per_s: Math.round((sent / elapsed) * 1000),
    client_process_cpu_us_per_message: Math.round((cpu * 1e6) / Math.max(1, sent)),
  };
}
