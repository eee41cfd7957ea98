import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';

/** One thing a sandbox stand-in received, decoded as far as its protocol allows. */
export interface SandboxMessage {
  id: number;
  /** The provider kind that received it: "apns", "fcm", "webpush", "smtp", "sms", "webhook". */
  kind: string;
  channel: string;
  /** The device token, email address, number or URL it was sent to. */
  to: string;
  receivedAt: number;
  headers: Record<string, string>;
  /** The decoded payload (decrypted for web push, parsed for email). */
  body: unknown;
  /** The raw form where it matters (the MIME source of an email). */
  raw?: string;
}

/**
 * Keeps what the sandbox received: the newest `keep` messages, plus a count per kind that never
 * forgets, so a long benchmark does not hold every message in memory.
 */
export class SandboxRecorder {
  #messages: SandboxMessage[] = [];
  #nextId = 1;
  readonly #counts = new Map<string, number>();
  readonly #listeners = new Set<(message: SandboxMessage) => void>();

  constructor(
    private readonly clock: Clock,
    private readonly keep = 10_000,
  ) {}

  record(message: Omit<SandboxMessage, 'id' | 'receivedAt'>): SandboxMessage {
    const full: SandboxMessage = { ...message, id: this.#nextId++, receivedAt: this.clock.now() };
    this.#messages.push(full);
    if (this.#messages.length > this.keep * 1.25) this.#messages = this.#messages.slice(-this.keep);
    this.#counts.set(message.kind, (this.#counts.get(message.kind) ?? 0) + 1);
    for (const listener of this.#listeners) listener(full);
    return full;
  }

  /** Newest first, filtered by channel (or kind) and recipient. */
  list(filter: { channel?: string; kind?: string; to?: string; limit?: number; afterId?: number } = {}): SandboxMessage[] {
    const out: SandboxMessage[] = [];
    const limit = filter.limit ?? 100;
    for (let i = this.#messages.length - 1; i >= 0 && out.length < limit; i--) {
      const m = this.#messages[i]!;
      if (filter.afterId !== undefined && m.id <= filter.afterId) break;
      if (filter.channel && m.channel !== filter.channel) continue;
      if (filter.kind && m.kind !== filter.kind) continue;
      if (filter.to && m.to !== filter.to) continue;
      out.push(m);
    }
    return out;
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  clear(): void {
    this.#messages = [];
    this.#counts.clear();
  }

  onMessage(listener: (message: SandboxMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/**
 * How a stand-in should misbehave for matching requests: answer an error status (with the
 * provider's own error reason), hang, or slow down; for a number of requests, for a while, or
 * above a rate.
 */
export interface BehaviorRule {
  /** Provider kind, e.g. "apns". */
  kind: string;
  /** Only for this recipient (token, address, number, URL); all recipients when absent. */
  to?: string;
  /** Answer this HTTP status (or SMTP reply code for smtp). */
  status?: number;
  /** The provider's error reason for that status, e.g. "Unregistered", "UNREGISTERED", "21610". */
  reason?: string;
  /** With a 429/503: the Retry-After to send, in seconds. */
  retryAfterSeconds?: number;
  /** Never answer (until the client gives up or the sandbox stops). */
  hang?: boolean;
  /** Answer normally, but this much later. */
  delayMs?: number;
  /** Apply to this many matching requests, then retire. */
  times?: number;
  /** Apply for this many seconds from now, then retire. */
  forSeconds?: number;
  /** Apply only to requests beyond this many per second (a rate limit). */
  abovePerSecond?: number;
}

export interface ActiveRule extends BehaviorRule {
  id: number;
  untilMs: number | null;
  remaining: number | null;
}

/** The rules in force; each stand-in asks `match` for every request it receives. */
export class SandboxBehaviors {
  #rules: ActiveRule[] = [];
  #nextId = 1;
  readonly #window = new Map<number, { second: number; count: number }>();

  constructor(private readonly clock: Clock) {}

  add(rule: BehaviorRule): ActiveRule {
    const active: ActiveRule = {
      ...rule,
      id: this.#nextId++,
      untilMs: rule.forSeconds === undefined ? null : this.clock.now() + rule.forSeconds * 1000,
      remaining: rule.times ?? null,
    };
    this.#rules.push(active);
    return active;
  }

  list(): ActiveRule[] {
    this.#expire();
    return [...this.#rules];
  }

  remove(id: number): boolean {
    const before = this.#rules.length;
    this.#rules = this.#rules.filter((r) => r.id !== id);
    return this.#rules.length < before;
  }

  clear(): void {
    this.#rules = [];
    this.#window.clear();
  }

  /** The rule that applies to this request, if any (the newest matching one), counting it. */
  match(kind: string, to: string): ActiveRule | undefined {
    this.#expire();
    for (let i = this.#rules.length - 1; i >= 0; i--) {
      const rule = this.#rules[i]!;
      if (rule.kind !== kind || (rule.to !== undefined && rule.to !== to)) continue;
      if (rule.abovePerSecond !== undefined && !this.#overRate(rule)) continue;
      if (rule.remaining !== null) {
        rule.remaining--;
        if (rule.remaining <= 0) this.#rules.splice(i, 1);
      }
      return rule;
    }
    return undefined;
  }

  #overRate(rule: ActiveRule): boolean {
    const second = Math.floor(this.clock.now() / 1000);
    const w = this.#window.get(rule.id);
    if (!w || w.second !== second) {
      this.#window.set(rule.id, { second, count: 1 });
      return 1 > rule.abovePerSecond!;
    }
    w.count++;
    return w.count > rule.abovePerSecond!;
  }

  #expire(): void {
    const now = this.clock.now();
    this.#rules = this.#rules.filter((r) => r.untilMs === null || r.untilMs > now);
  }
}

/**
 * What the sandbox trusts, registered by whoever wires providers to it: APNs signing keys by key
 * id, FCM service accounts by client email, SMS accounts by SID, webhook secrets by URL, web push
 * subscriptions it created. Stand-ins reject what they cannot verify, like the real services.
 */
export class SandboxTrust {
  readonly #entries = new Map<string, Map<string, Record<string, string>>>();

  /** With `persist`, everything registered is saved, so a restarted sandbox still trusts it. */
  constructor(private readonly persist?: { load(): Record<string, Record<string, Record<string, string>>>; save(all: Record<string, Record<string, Record<string, string>>>): void }) {
    for (const [kind, byId] of Object.entries(persist?.load() ?? {})) {
      for (const [id, material] of Object.entries(byId)) this.#set(kind, id, material);
    }
  }

  register(kind: string, id: string, material: Record<string, string>): void {
    this.#set(kind, id, material);
    this.persist?.save(Object.fromEntries([...this.#entries].map(([k, byId]) => [k, Object.fromEntries(byId)])));
  }

  #set(kind: string, id: string, material: Record<string, string>): void {
    let byId = this.#entries.get(kind);
    if (!byId) {
      byId = new Map();
      this.#entries.set(kind, byId);
    }
    byId.set(id, material);
  }

  get(kind: string, id: string): Record<string, string> | undefined {
    return this.#entries.get(kind)?.get(id);
  }

  all(kind: string): [string, Record<string, string>][] {
    return [...(this.#entries.get(kind) ?? new Map<string, Record<string, string>>())];
  }
}

/** Shared by every stand-in of one sandbox. */
export interface SandboxContext {
  recorder: SandboxRecorder;
  behaviors: SandboxBehaviors;
  trust: SandboxTrust;
  clock: Clock;
  logger: Logger;
  /** The host to listen on (127.0.0.1). */
  host: string;
  /** The port a stand-in should listen on (0: any free port). Stable ports keep sandbox URLs valid across restarts. */
  portFor(kind: string): number;
}

export interface RunningService {
  /** What providers connect to: a base URL, or smtp://host:port. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * One provider's stand-in: one folder under `src/sandbox/`, one line in `sandbox/registry.ts`.
 * `kind` matches the provider kind it stands in for.
 */
export interface SandboxService {
  readonly kind: string;
  readonly channel: string;
  start(context: SandboxContext): Promise<RunningService>;
}

/** Waits `ms`, or forever for a hang, unless the signal fires. */
export function applyDelay(rule: ActiveRule | undefined, signal?: AbortSignal): Promise<void> {
  if (!rule || (!rule.hang && !rule.delayMs)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = rule.hang ? undefined : setTimeout(done, rule.delayMs);
    signal?.addEventListener('abort', done, { once: true });
  });
}
