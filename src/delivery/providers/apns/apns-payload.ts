import type { DeliveryRequest, PushContent, SendOutcome } from '../../delivery-model.ts';
import { permanent } from '../../delivery-model.ts';

/** APNs refuses larger payloads (413 PayloadTooLarge) for every push type but VoIP. */
export const MAX_PAYLOAD_BYTES = 4096;
/** APNs answers 400 BadCollapseId above this. */
export const MAX_COLLAPSE_ID_BYTES = 64;

/** The per-notification part of an APNs request: its headers (without auth) and JSON payload. */
export interface ApnsNotification {
  headers: Record<string, string>;
  payload: string;
}

type Aps = {
  alert?: { title?: string; body?: string };
  badge?: number;
  sound?: string;
  'content-available'?: 1;
};

/**
 * Apple: the `alert` push type is for notifications that show an alert, play a sound or badge the
 * icon; anything else is a silent `background` push, which must carry `content-available: 1`.
 */
function isAlert(content: PushContent): boolean {
  return content.title !== undefined || content.body !== undefined || content.sound !== undefined || content.badge !== undefined;
}

function aps(content: PushContent, alert: boolean): Aps {
  if (!alert) return { 'content-available': 1 };
  const out: Aps = {};
  if (content.title !== undefined || content.body !== undefined) {
    out.alert = {};
    if (content.title !== undefined) out.alert.title = content.title;
    if (content.body !== undefined) out.alert.body = content.body;
  }
  if (content.badge !== undefined) out.badge = content.badge;
  if (content.sound !== undefined) out.sound = content.sound;
  return out;
}

/**
 * Builds the payload and headers of one notification, or the permanent failure APNs would answer
 * (so a message that cannot be delivered costs no request).
 */
export function buildApnsNotification(request: DeliveryRequest, topic: string): { ok: true; notification: ApnsNotification } | { ok: false; outcome: SendOutcome } {
  const content = request.content as PushContent;
  const alert = isAlert(content);
  const body: Record<string, unknown> = {};
  // Custom keys sit beside `aps` at the top level; `aps` itself is Apple's and never overwritten.
  for (const [key, value] of Object.entries(content.data ?? {})) if (key !== 'aps') body[key] = value;
  if (content.deeplink !== undefined) body.deeplink = content.deeplink;
  body.aps = aps(content, alert);
  const payload = JSON.stringify(body);
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_PAYLOAD_BYTES) {
    return { ok: false, outcome: permanent('PayloadTooLarge', `the notification payload is ${bytes} bytes; APNs accepts at most ${MAX_PAYLOAD_BYTES}`) };
  }
  const headers: Record<string, string> = {
    'apns-id': request.messageId,
    'apns-topic': topic,
    'apns-push-type': alert ? 'alert' : 'background',
    // APNs: 10 delivers now and is only for alerts; background pushes must use 5.
    'apns-priority': alert && content.priority !== 'normal' ? '10' : '5',
  };
  // APNs: epoch seconds after which it stops trying (0 would mean "try once, never store": an offline
  // phone would miss it). With no expiry the header is left out and APNs keeps the notification.
  if (request.expiresAt !== null) headers['apns-expiration'] = String(Math.max(0, Math.floor(request.expiresAt / 1000)));
  if (content.collapseKey !== undefined) {
    if (Buffer.byteLength(content.collapseKey) > MAX_COLLAPSE_ID_BYTES) {
      return { ok: false, outcome: permanent('BadCollapseId', `the collapse key is longer than ${MAX_COLLAPSE_ID_BYTES} bytes`) };
    }
    headers['apns-collapse-id'] = content.collapseKey;
  }
  return { ok: true, notification: { headers, payload } };
}
