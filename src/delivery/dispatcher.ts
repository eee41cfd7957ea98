import { setMaxListeners } from 'node:events';
import type { Clock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { backoffMs, sleep, type RetryPolicy } from '../core/retry.ts';
import type { Platform } from '../profiles/profile-model.ts';
import type { MessageUpdate, OutboxMessage, OutboxStore } from '../storage/outbox-port.ts';
import type { Channel, DeliveryRequest, SendOutcome } from './delivery-model.ts';
import { ProviderGate } from './flow/provider-gate.ts';
import { OutcomeWriter } from './outcome-writer.ts';
import type { ProviderClient, ProviderLimits } from './provider.ts';

export interface ResolvedProvider {
  kind: string;
  client: ProviderClient;
  limits: ProviderLimits;
  /** Changes when the provider's configuration changes, so gates and clients are rebuilt. */
  version: string;
}

/** Which configured provider delivers a project's messages on a channel (and platform). */
export interface ProviderResolver {
  resolve(projectId: string, channel: Channel, platform: Platform | null): ResolvedProvider | { code: string; reason: string };
  /** Takes a provider out of use (its endpoint asked to be removed). */
  disable(projectId: string, kind: string, reason: string): Promise<void>;
  /** Looks at the configuration again (a provider saved a moment ago may not be seen yet). */
  refresh?(): Promise<void>;
}

export interface DispatcherOptions {
  store: OutboxStore;
  resolver: ProviderResolver;
  clock: Clock;
  logger: Logger;
  /** This dispatcher's lease owner id. */
  owner: string;
  leaseMs?: number;
  maxAttempts?: number;
  claimBatch?: number;
  /** Messages held in memory, waiting for their provider's gate, at most. */
  maxLocal?: number;
  /** Outcomes written in one transaction, at most; fewer when `settleDelayMs` passes first. */
  settleBatch?: number;
  /** How long an outcome may wait for others to share its transaction (the crash window grows by this much). */
  settleDelayMs?: number;
  sendTimeoutMs?: number;
  /** The one-click unsubscribe URL for a marketing email, if Herald can serve one. */
  unsubscribeUrl?: (message: OutboxMessage) => string | undefined;
  /** Renders claimed campaign/journey messages (content still a template); a failure fails that message. */
  prepare?: (messages: readonly OutboxMessage[]) => Promise<Map<string, { ok: true } | { ok: false; code: string; reason: string }>>;
}

const RETRY: RetryPolicy = { initialMs: 1_000, maxMs: 300_000, multiplier: 2 };
/**
 * A message whose provider is not (yet) in this thread's view of the configuration is handed back
 * for a while before it fails: the API checked a provider existed when it accepted the send, and a
 * provider saved a moment ago reaches this thread within a refresh.
 */
const PROVIDER_GRACE_MS = 30_000;
/** A message whose gate opens later than this goes back to the outbox instead of waiting in memory. */
const HOLD_LIMIT_MS = 2_000;
/** A lane may always hold this many, however slow its provider. */
const MIN_LANE_HOLD = 100;
/** How often an idle dispatcher looks for messages that came due (retries, hand-backs). */
const POLL_MS = 250;

interface Lane {
  key: string;
  gate: ProviderGate;
  provider: ResolvedProvider;
  items: OutboxMessage[];
  waitUntil: number;
  /** When the next message this lane hands back (over its hold) is due. */
  deferredUntil: number;
}

export interface DispatcherStats {
  claimed: number;
  sent: number;
  failed: number;
  retried: number;
  expired: number;
  inFlight: number;
  held: number;
}

/**
 * Delivers a cell's outbox: claims due messages with a lease, holds them per (project, provider)
 * behind a gate (rate, adaptive concurrency, Retry-After, circuit breaker), sends them, and settles
 * each outcome — sent, retried with backoff, failed with a reason, or expired — exactly once (I4).
 * Messages past `expires_at` are never sent (I6). Outcomes are written in small batches.
 */
export class Dispatcher {
  readonly #o: Required<Omit<DispatcherOptions, 'unsubscribeUrl' | 'prepare'>> & Pick<DispatcherOptions, 'unsubscribeUrl' | 'prepare'>;
  readonly #lanes = new Map<string, Lane>();
  readonly #outcomes: OutcomeWriter;
  /**
   * Ids held in lanes, in flight or with an outcome not yet written: their leases are renewed, and
   * a claim of one of them (a lease this dispatcher let lapse) is ignored.
   */
  readonly #mine = new Set<string>();
  /** The latest claim's attempt number of messages claimed again while this dispatcher still held them. */
  readonly #reclaimed = new Map<string, number>();
  #renewedAt = 0;
  #deadline: { since: number; signal: AbortSignal } | undefined;
  /** When a claim last found the queue empty (undefined: there may be more). */
  #drainedAt: number | undefined;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  readonly stats: DispatcherStats = { claimed: 0, sent: 0, failed: 0, retried: 0, expired: 0, inFlight: 0, held: 0 };

  constructor(options: DispatcherOptions) {
    this.#o = {
      leaseMs: 300_000,
      maxAttempts: 10,
      claimBatch: 500,
      maxLocal: 5_000,
      settleBatch: 500,
      settleDelayMs: 25,
      sendTimeoutMs: 30_000,
      ...options,
    };
    this.#outcomes = new OutcomeWriter({
      store: this.#o.store,
      logger: this.#o.logger,
      batch: this.#o.settleBatch,
      delayMs: this.#o.settleDelayMs,
      onWritten: (ids) => {
        for (const id of ids) {
          this.#mine.delete(id);
          this.#reclaimed.delete(id);
        }
      },
    });
  }

  #held(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.items.length;
    return n;
  }

  /** Claims, routes and dispatches what it can now; resolves quickly. Returns messages newly claimed. */
  async tick(): Promise<number> {
    const now = this.#o.clock.now();
    let claimed: OutboxMessage[] = [];
    // Claims are transactions (an fsync each on SQLite): refill in batches, when what is held runs
    // low, not one message per finished send.
    const held = this.#held();
    const room = this.#o.maxLocal - held - this.#inFlight - this.#outcomes.pending;
    // After a claim came back short, the queue is empty for now: look again when woken (new
    // messages) or at the next poll (retries coming due), not after every finished send.
    const polled = this.#drainedAt === undefined || now - this.#drainedAt >= POLL_MS;
    if (room > 0 && polled && (held < this.#o.claimBatch || room >= this.#o.claimBatch)) {
      const limit = Math.min(this.#o.claimBatch, room);
      claimed = await this.#o.store.claimMessages(this.#o.owner, now, this.#o.leaseMs, limit);
      this.#drainedAt = claimed.length < limit ? now : undefined;
    }
    this.stats.claimed += claimed.length;
    const prepared = claimed.length > 0 && this.#o.prepare ? await this.#o.prepare(claimed.filter((m) => !this.#mine.has(m.id))) : undefined;
    for (const m of claimed) {
      if (this.#mine.has(m.id)) {
        // Already ours (its lease lapsed, e.g. while outcomes were slow to write): the copy we hold
        // settles it, as the new claim — else its outcome would be refused and the message resent.
        this.#reclaimed.set(m.id, m.attempts);
        this.#outcomes.retarget(m.id, m.attempts);
        continue;
      }
      this.#mine.add(m.id);
      const ready = prepared?.get(m.id);
      if (ready && !ready.ok) {
        this.stats.failed++;
        this.#settle(m, { state: 'failed', reason: ready.reason, errorCode: ready.code, at: now, uncountAttempt: true });
        continue;
      }
      this.#route(m, now);
    }
    this.#pump(now);
    await this.#renewLeases(now);
    this.stats.inFlight = this.#inFlight;
    this.stats.held = this.#held();
    return claimed.length;
  }

  /** Runs until the signal fires, then lets sends in flight finish and hands back what it holds. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const claimed = await this.tick();
        failures = 0;
        if (claimed === 0) await this.#idle(signal, this.#nextWake());
      } catch (error) {
        failures++;
        this.#o.logger.error({ err: coerceError(error).message }, 'dispatcher tick failed; backing off');
        await sleep(backoffMs({ initialMs: 100, maxMs: 5_000, multiplier: 2 }, failures), signal);
      }
    }
    await this.stop();
  }

  /** Stops: waits (bounded) for sends in flight, settles them, returns held messages to the outbox. */
  async stop(): Promise<void> {
    const deadline = this.#o.clock.now() + 10_000;
    while (this.#inFlight > 0 && this.#o.clock.now() < deadline) await sleep(20);
    await this.#outcomes.drain();
    this.#lanes.clear();
    this.#mine.clear();
    this.#reclaimed.clear();
    await this.#o.store.releaseLeases(this.#o.owner, this.#o.clock.now());
  }

  /** New messages were queued: claim again now. */
  wake(): void {
    this.#drainedAt = undefined;
    this.#wake?.();
  }

  /** Keeps the leases of everything held or in flight alive, so no other claim takes them (I4). */
  async #renewLeases(now: number): Promise<void> {
    if (this.#mine.size === 0 || now - this.#renewedAt < this.#o.leaseMs / 3) return;
    this.#renewedAt = now;
    await this.#o.store.renewLeases(this.#o.owner, [...this.#mine], now + this.#o.leaseMs);
  }

  #route(m: OutboxMessage, now: number): void {
    if (m.expiresAt !== null && now >= m.expiresAt) {
      this.stats.expired++;
      this.#settle(m, { state: 'expired', reason: 'it expired before it could be delivered', errorCode: 'EXPIRED', at: now, uncountAttempt: true });
      return;
    }
    const provider = this.#o.resolver.resolve(m.projectId, m.channel, m.platform);
    if (!('client' in provider)) {
      if (now - m.createdAt < PROVIDER_GRACE_MS) {
        void this.#o.resolver.refresh?.();
        this.#settle(m, { state: 'queued', nextAttemptAt: now + 1_000, reason: null, errorCode: null, at: now, handBack: true });
        return;
      }
      this.stats.failed++;
      this.#settle(m, { state: 'failed', reason: provider.reason, errorCode: provider.code, at: now, uncountAttempt: true });
      return;
    }
    const key = `${m.projectId}/${provider.kind}/${provider.version}`;
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = { key, gate: new ProviderGate(provider.limits, now), provider, items: [], waitUntil: 0, deferredUntil: 0 };
      this.#lanes.set(key, lane);
    }
    // A lane holds what its gate lets through in HOLD_LIMIT_MS, not more: one project's backlog
    // behind a slow provider would otherwise fill this thread's buffer and stop the claims that
    // bring in other projects' messages. The rest waits in the outbox, due when the gate would
    // reach it, unattempted.
    const rate = lane.provider.limits.ratePerSecond;
    const ahead = lane.items.length;
    if (ahead >= Math.max(MIN_LANE_HOLD, Math.ceil((rate * HOLD_LIMIT_MS) / 1000))) {
      // Spread at the gate's rate, so each comes back about when it can be sent (not all at once).
      const due = Math.max(now + Math.ceil((ahead * 1000) / rate), lane.deferredUntil);
      lane.deferredUntil = due + Math.ceil(1000 / rate);
      this.#settle(m, { state: 'queued', nextAttemptAt: due, reason: null, errorCode: null, at: now, handBack: true });
      return;
    }
    lane.items.push(m);
  }

  /** Sends what the gates admit, round-robin across lanes so no project starves another. */
  #pump(now: number): void {
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const lane of this.#lanes.values()) {
        if (lane.items.length === 0 || lane.waitUntil > now) continue;
        const admit = lane.gate.admit(now);
        if (admit === 0) {
          void this.#send(lane, lane.items.shift()!);
          progressed = true;
        } else if (admit > 0) {
          lane.waitUntil = admit;
          if (admit - now > HOLD_LIMIT_MS) this.#handBack(lane, admit, now);
        }
      }
    }
  }

  /** A gate closed for a while (Retry-After, an open breaker): its messages wait in the outbox, unattempted. */
  #handBack(lane: Lane, until: number, now: number): void {
    for (const m of lane.items.splice(0)) {
      this.#settle(m, { state: 'queued', nextAttemptAt: until, reason: null, errorCode: null, at: now, handBack: true });
    }
  }

  #nextWake(): number {
    let next = POLL_MS;
    const now = this.#o.clock.now();
    for (const lane of this.#lanes.values()) if (lane.items.length > 0 && lane.waitUntil > now) next = Math.min(next, lane.waitUntil - now);
    return Math.max(5, next);
  }

  async #idle(signal: AbortSignal, ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  async #send(lane: Lane, m: OutboxMessage): Promise<void> {
    this.#inFlight++;
    const started = this.#o.clock.now();
    let outcome: SendOutcome;
    try {
      // The send must end well inside the lease, or another claim could take the message meanwhile.
      outcome = await lane.provider.client.send(this.#request(m), this.#sendDeadline(started));
    } catch (error) {
      // A provider that throws has a bug; the message is retried like any transient failure.
      outcome = { kind: 'failed', retryable: true, code: 'PROVIDER_ERROR', message: coerceError(error).message };
    }
    const now = this.#o.clock.now();
    const retryableFailure = outcome.kind === 'failed' && outcome.retryable;
    lane.gate.done(now, now - started, {
      congested: retryableFailure,
      failed: retryableFailure,
      retryAfterMs: outcome.kind === 'failed' ? outcome.retryAfterMs : undefined,
    });
    this.#inFlight--;
    this.#settleOutcome(lane, m, outcome, now);
    this.#pump(now);
    this.#wake?.();
  }

  #settleOutcome(lane: Lane, m: OutboxMessage, outcome: SendOutcome, now: number): void {
    const kind = lane.provider.kind;
    switch (outcome.kind) {
      case 'sent':
        this.stats.sent++;
        this.#settle(m, { state: 'sent', reason: null, errorCode: null, providerKind: kind, providerMessageId: outcome.providerMessageId, details: outcome.details ?? null, at: now });
        return;
      case 'recipient-invalid':
        this.stats.failed++;
        this.#settle(m, { state: 'failed', reason: outcome.message, errorCode: outcome.code, providerKind: kind, effect: outcome.effect, at: now });
        if (outcome.effect === 'disable-endpoint') {
          void this.#o.resolver.disable(m.projectId, kind, outcome.message).catch((error: unknown) => this.#o.logger.error({ err: coerceError(error).message }, 'could not disable a provider'));
        }
        return;
      case 'failed': {
        if (outcome.code === 'EXPIRED') {
          this.stats.expired++;
          this.#settle(m, { state: 'expired', reason: 'it expired before it could be delivered', errorCode: 'EXPIRED', providerKind: kind, at: now });
          return;
        }
        if (outcome.retryable && m.attempts < this.#o.maxAttempts) {
          this.stats.retried++;
          const wait = Math.max(backoffMs(RETRY, m.attempts), outcome.retryAfterMs ?? 0);
          this.#settle(m, { state: 'queued', nextAttemptAt: now + wait, reason: `${outcome.message} (attempt ${m.attempts}; retrying)`, errorCode: outcome.code, providerKind: kind, at: now });
          return;
        }
        this.stats.failed++;
        const reason = outcome.retryable ? `gave up after ${m.attempts} attempts: ${outcome.message}` : outcome.message;
        this.#settle(m, { state: 'failed', reason, errorCode: outcome.code, providerKind: kind, at: now });
      }
    }
  }

  #settle(m: OutboxMessage, update: Omit<MessageUpdate, 'id' | 'owner' | 'target' | 'claimedAttempt'>): void {
    this.#outcomes.add({
      ...update,
      id: m.id,
      owner: this.#o.owner,
      claimedAttempt: Math.max(m.attempts, this.#reclaimed.get(m.id) ?? 0),
      target: { projectId: m.projectId, channel: m.channel, customId: m.customId, installId: m.installId, recipient: m.recipient },
    });
  }

  /**
   * The signal that ends a send started now: one timer shared by the sends of the same 100 ms
   * (thousands a second would otherwise each arm their own), so a send may be cut up to 100 ms
   * before its own timeout — never later, so it still ends well inside its lease.
   */
  #sendDeadline(now: number): AbortSignal {
    if (!this.#deadline || now - this.#deadline.since >= 100) {
      const signal = AbortSignal.timeout(Math.min(this.#o.sendTimeoutMs, this.#o.leaseMs / 2));
      setMaxListeners(0, signal); // every send of the window listens to it
      this.#deadline = { since: now, signal };
    }
    return this.#deadline.signal;
  }

  #request(m: OutboxMessage): DeliveryRequest {
    const unsubscribeUrl = m.channel === 'email' && m.category === 'marketing' ? this.#o.unsubscribeUrl?.(m) : undefined;
    return {
      messageId: m.id,
      projectId: m.projectId,
      channel: m.channel,
      to: m.recipient,
      ...(m.platform ? { platform: m.platform } : {}),
      ...(m.webPush ? { webPush: m.webPush } : {}),
      content: m.content,
      category: m.category,
      expiresAt: m.expiresAt,
      attempt: m.attempts,
      ...(unsubscribeUrl ? { unsubscribeUrl } : {}),
    };
  }
}
