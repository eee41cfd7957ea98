import type { Category, Channel, MessageContent, RecipientEffect } from '../delivery/delivery-model.ts';
import type { Platform, WebPushSubscription } from '../profiles/profile-model.ts';

/** Where a message stands. `queued` and `sending` are live; the rest are terminal (I4). */
export type MessageState = 'queued' | 'sending' | 'sent' | 'failed' | 'expired' | 'suppressed' | 'capped' | 'cancelled';
export const TERMINAL_STATES: readonly MessageState[] = ['sent', 'failed', 'expired', 'suppressed', 'capped', 'cancelled'];
export const MESSAGE_STATES: readonly MessageState[] = ['queued', 'sending', ...TERMINAL_STATES];

/** Lanes in claim order: transactional before triggered before campaign (I6: one project's big send cannot starve another's transactional messages). */
export const LANES = { transactional: 0, triggered: 1, campaign: 2 } as const;

/** A send: what one API call (later: one campaign or journey step) asked for. */
export interface SendRow {
  id: string;
  projectId: string;
  channel: Channel;
  category: Category;
  source: string;
  /** What was asked, for the record: recipient counts, template, etc. */
  summary: Record<string, unknown>;
  createdAt: number;
}

/** A message the applier materialises into the outbox (or records as already settled: suppressed, failed). */
export interface NewMessage {
  id: string;
  projectId: string;
  sendId: string;
  /** Unique: the same (source, step, recipient, channel) can never yield two messages (I4). */
  idempotencyKey: string;
  channel: Channel;
  category: Category;
  lane: number;
  customId: string | null;
  installId: string | null;
  platform: Platform | null;
  /** Token, address, number or URL; for a recipient that could not be resolved, what was asked for. */
  recipient: string;
  webPush: WebPushSubscription | null;
  content: MessageContent;
  state: 'queued' | 'suppressed' | 'failed';
  reason: string | null;
  errorCode: string | null;
  expiresAt: number | null;
  createdAt: number;
  /** The saved template it was rendered from, for retargeting ("opened the welcome email"). */
  templateId?: string | null;
}

export interface OutboxMessage extends Omit<NewMessage, 'state'> {
  state: MessageState;
  /** The A/B arm (or `control`) of a campaign message. */
  variant: string | null;
  /**
   * Set on campaign and journey messages, whose `content` is still the template (per language):
   * rendered at delivery with the recipient's profile and these extra variables (`data`, `priority`).
   */
  render: Record<string, unknown> | null;
  campaignId: string | null;
  attempts: number;
  nextAttemptAt: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  providerKind: string | null;
  providerMessageId: string | null;
  details: Record<string, unknown> | null;
  updatedAt: number;
  sentAt: number | null;
}

export interface MessageEvent {
  at: number;
  state: MessageState;
  code: string | null;
  detail: string | null;
}

/** What the dispatcher learnt about one message it had claimed. */
export interface MessageUpdate {
  id: string;
  /** Who the message was for: the effect of a rejected recipient applies here. */
  target: { projectId: string; channel: Channel; customId: string | null; installId: string | null; recipient: string };
  /** The lease owner that claimed it: an update from a lost lease is ignored. */
  owner: string;
  /** `queued` schedules a retry at `nextAttemptAt`; anything else is terminal. */
  state: MessageState;
  nextAttemptAt?: number;
  reason: string | null;
  errorCode: string | null;
  providerKind?: string | null;
  providerMessageId?: string | null;
  details?: Record<string, unknown> | null;
  at: number;
  /** What a rejected recipient means for stored data (disable the token, suppress the address…). */
  effect?: RecipientEffect;
  /** The claim did not lead to an attempt (no provider could take it): the claim does not count. */
  uncountAttempt?: boolean;
  /** Handed back to the queue unattempted (its provider asked to wait): no history entry either. */
  handBack?: boolean;
  /**
   * The `attempts` value of the claim this outcome belongs to. A message taken back after its
   * lease expired and claimed again has a higher count, so a late outcome of the old claim is
   * ignored even when the same dispatcher made both claims (I4).
   */
  claimedAttempt: number;
}

export interface SendReport {
  send: SendRow;
  counts: Record<MessageState, number>;
}

export interface MessagePage {
  messages: (OutboxMessage & { history: MessageEvent[] })[];
  next: string | null;
}

/** The outbox: one row per message, claimed with leases, settled exactly once (I4). */
export interface OutboxStore {
  /**
   * Takes up to `limit` due messages (queued, next attempt due; lanes in order) for `owner`,
   * marking them `sending` with a lease until `nowMs + leaseMs`. Messages whose lease expired
   * (a dispatcher that died) are taken back first.
   */
  claimMessages(owner: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxMessage[]>;
  /** Records outcomes (and their effects on recipients), each only if `owner` still holds the lease. */
  settleMessages(updates: readonly MessageUpdate[]): Promise<{ applied: number; lostLeases: number }>;
  /** Extends the leases `owner` holds on these messages (still `sending`) to `untilMs`. */
  renewLeases(owner: string, ids: readonly string[], untilMs: number): Promise<number>;
  /** Puts back what `owner` still holds (on shutdown), without counting the attempt it had started. */
  releaseLeases(owner: string, nowMs: number): Promise<number>;
  /** How many messages are due now (for lag and drain estimates). */
  countDue(nowMs: number): Promise<number>;

  /** A delivery receipt from the provider (e.g. an SMS status callback), kept in the message's history. */
  recordReceipt(projectId: string, providerKind: string, providerMessageId: string, status: string, atMs: number): Promise<boolean>;

  getSend(projectId: string, sendId: string): Promise<SendReport | null>;
  listMessages(
    projectId: string,
    filter: { customId?: string; sendId?: string; limit: number; cursor?: string | undefined },
  ): Promise<MessagePage>;
}
