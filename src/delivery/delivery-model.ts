import type { Platform, WebPushSubscription } from '../profiles/profile-model.ts';

/** The channels Herald delivers on. */
export type Channel = 'push' | 'email' | 'sms' | 'webhook';
export const CHANNELS: readonly Channel[] = ['push', 'email', 'sms', 'webhook'];

/** Marketing sends respect consent and (later) capping; transactional ones are what the user asked for. */
export type Category = 'transactional' | 'marketing';

/** Push content: what the device shows, plus optional data for the app. */
export interface PushContent {
  title?: string;
  body?: string;
  /** Opened when the notification is tapped. */
  deeplink?: string;
  data?: Record<string, string | number | boolean | null>;
  badge?: number;
  sound?: string;
  /** `high` wakes the device now; `normal` lets the OS batch delivery. */
  priority?: 'high' | 'normal';
  /** Notifications with the same key replace each other on the device. */
  collapseKey?: string;
}

export interface EmailAddress {
  email: string;
  name?: string;
}

export interface EmailContent {
  subject: string;
  html: string;
  /** Generated from the HTML when absent. */
  text?: string;
  from?: EmailAddress;
  replyTo?: string;
}

export interface SmsContent {
  body: string;
}

/** A webhook delivers this JSON to the provider's configured URL. */
export interface WebhookContent {
  /** An event type for the receiver, e.g. "message". */
  type: string;
  data: Record<string, unknown>;
}

export type MessageContent = PushContent | EmailContent | SmsContent | WebhookContent;

/**
 * One concrete delivery attempt, as a provider sees it. `messageId` is a UUID, stable across
 * retries: providers pass it on where the protocol has an idempotency id (apns-id, webhook-id).
 */
export interface DeliveryRequest {
  messageId: string;
  projectId: string;
  channel: Channel;
  /** The device token, email address, E.164 number or webhook URL. */
  to: string;
  /** Push only: the platform of the installation. */
  platform?: Platform;
  /** Web push only: the browser's subscription (endpoint and keys). */
  webPush?: WebPushSubscription;
  content: MessageContent;
  category: Category;
  /** Epoch ms after which the message must not be delivered; providers pass it on as TTL/expiration. */
  expiresAt: number | null;
  /** 1 for the first attempt. */
  attempt: number;
  /** Marketing email: the one-click unsubscribe URL (RFC 8058). */
  unsubscribeUrl?: string;
}

/** What a rejected recipient means for Herald's data, so it stops trying. */
export type RecipientEffect =
  /** The push token is dead (APNs Unregistered/BadDeviceToken, FCM UNREGISTERED). */
  | 'disable-token'
  /** The web push subscription is gone (404/410). */
  | 'remove-subscription'
  /** The email address hard-bounced. */
  | 'suppress-address'
  /** The phone number opted out (e.g. replied STOP). */
  | 'unsubscribe-sms'
  /** The webhook endpoint asked to be removed (410). */
  | 'disable-endpoint';

/**
 * A provider's answer. Expected outcomes are values — a provider never throws for something the
 * remote side said; it throws only for its own bugs, and the dispatcher treats that as retryable.
 */
export type SendOutcome =
  | {
      kind: 'sent';
      /** The provider's id for the message, when it gives one. */
      providerMessageId: string | null;
      /** Facts worth keeping with the message (e.g. SMS segments and encoding). */
      details?: Record<string, string | number | boolean>;
    }
  | {
      kind: 'failed';
      retryable: boolean;
      /** A stable code: the provider's reason when it has one (e.g. "TooManyRequests"), else HTTP_<status>. */
      code: string;
      message: string;
      retryAfterMs?: number;
    }
  | { kind: 'recipient-invalid'; code: string; message: string; effect: RecipientEffect };

export const sent = (providerMessageId: string | null, details?: Record<string, string | number | boolean>): SendOutcome =>
  details ? { kind: 'sent', providerMessageId, details } : { kind: 'sent', providerMessageId };

export const retryable = (code: string, message: string, retryAfterMs?: number): SendOutcome =>
  retryAfterMs === undefined
    ? { kind: 'failed', retryable: true, code, message }
    : { kind: 'failed', retryable: true, code, message, retryAfterMs };

export const permanent = (code: string, message: string): SendOutcome => ({ kind: 'failed', retryable: false, code, message });

export const recipientInvalid = (code: string, message: string, effect: RecipientEffect): SendOutcome => ({
  kind: 'recipient-invalid',
  code,
  message,
  effect,
});

/** Parses an HTTP Retry-After header (seconds or an HTTP date) into milliseconds from `nowMs`. */
export function retryAfterMs(header: string | null | undefined, nowMs: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
