import { createHash, createPublicKey } from 'node:crypto';
import webpush from 'web-push';
import type { DeliveryRequest, PushContent, SendOutcome } from '../../delivery-model.ts';
import { permanent, recipientInvalid } from '../../delivery-model.ts';
import type { WebPushSubscription } from '../../../profiles/profile-model.ts';
import type { VapidAuthorization } from './vapid-authorization.ts';

/**
 * RFC 8291 §4: push services need only accept 4096 octets of body; less the 86-octet aes128gcm
 * header, the 1-octet padding delimiter and the 16-octet tag, that leaves 3993 octets of plaintext.
 */
export const MAX_PLAINTEXT_BYTES = 3993;

/** RFC 8030 §5.2: without an expiry, ask the push service to keep the message for 4 weeks. */
export const DEFAULT_TTL_SECONDS = 4 * 7 * 24 * 3600;

/** RFC 8030 §5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet. */
const SAFE_TOPIC = /^[A-Za-z0-9_-]{1,32}$/;

/** What to POST, ready for the wire. */
export interface PushHttpRequest {
  url: URL;
  headers: Record<string, string>;
  body: Buffer;
}

/** The JSON the service worker receives: the push content plus the message id, to dedupe retries. */
export function pushPayload(request: DeliveryRequest): string {
  const content = request.content as PushContent;
  return JSON.stringify({
    message_id: request.messageId,
    title: content.title,
    body: content.body,
    deeplink: content.deeplink,
    data: content.data,
    badge: content.badge,
    sound: content.sound,
  });
}

/** A collapse key as an RFC 8030 Topic: kept when already safe, else a stable hash of it. */
export function topicFor(collapseKey: string): string {
  if (SAFE_TOPIC.test(collapseKey)) return collapseKey;
  return createHash('sha256').update(collapseKey).digest('base64url').slice(0, 32);
}

/** RFC 8030 §5.2: TTL is whole seconds the push service may hold the message. */
export function ttlSeconds(expiresAt: number | null, nowMs: number): number {
  if (expiresAt === null) return DEFAULT_TTL_SECONDS;
  return Math.max(0, Math.floor((expiresAt - nowMs) / 1000));
}

function isP256Point(bytes: Buffer): boolean {
  if (bytes.length !== 65 || bytes[0] !== 0x04) return false;
  try {
    // RFC 8291 §7: a public key must be checked to be on the curve before it is used.
    createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: bytes.subarray(1, 33).toString('base64url'),
        y: bytes.subarray(33).toString('base64url'),
      },
      format: 'jwk',
    });
    return true;
  } catch {
    return false;
  }
}

/** Why a subscription can never be delivered to, or null when it looks usable. */
export function subscriptionProblem(subscription: WebPushSubscription): string | null {
  let url: URL;
  try {
    url = new URL(subscription.endpoint);
  } catch {
    return 'the subscription endpoint is not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return 'the subscription endpoint is not an http(s) URL';
  // Google shut legacy GCM down in 2019; web-push would also want a GCM API key for it.
  if (url.hostname === 'android.googleapis.com') return 'the subscription is a legacy GCM endpoint';
  if (!isP256Point(Buffer.from(subscription.keys.p256dh, 'base64url')))
    return 'keys.p256dh is not an uncompressed P-256 public key';
  // RFC 8291 §3.2: the authentication secret is 16 octets.
  if (Buffer.from(subscription.keys.auth, 'base64url').length !== 16)
    return 'keys.auth is not a 16-byte secret';
  return null;
}

/**
 * Builds the encrypted request with the web-push library (aes128gcm, RFC 8291) and signs it with
 * VAPID (`Authorization: vapid t=…, k=…`, RFC 8292), or returns the outcome that makes sending
 * pointless.
 */
export function buildPushRequest(
  request: DeliveryRequest,
  vapid: VapidAuthorization,
  nowMs: number,
): { ok: true; request: PushHttpRequest } | { ok: false; outcome: SendOutcome } {
  const subscription = request.webPush;
  if (!subscription) {
    return {
      ok: false,
      outcome: permanent('MISSING_SUBSCRIPTION', 'a web push message needs the installation’s subscription'),
    };
  }
  const problem = subscriptionProblem(subscription);
  if (problem) {
    return { ok: false, outcome: recipientInvalid('INVALID_SUBSCRIPTION', problem, 'remove-subscription') };
  }
  if (request.expiresAt !== null && request.expiresAt <= nowMs) {
    return { ok: false, outcome: permanent('EXPIRED', 'the message expired before it could be sent') };
  }
  const payload = pushPayload(request);
  const size = Buffer.byteLength(payload);
  if (size > MAX_PLAINTEXT_BYTES) {
    return {
      ok: false,
      outcome: permanent(
        'PAYLOAD_TOO_LARGE',
        `the push payload is ${size} bytes; Web Push carries at most ${MAX_PLAINTEXT_BYTES} (RFC 8291 §4)`,
      ),
    };
  }
  const content = request.content as PushContent;
  // RFC 8292 §2: the token's audience is the origin of the push resource.
  const authorization = vapid.header(new URL(subscription.endpoint).origin, nowMs);
  const details = webpush.generateRequestDetails(
    { endpoint: subscription.endpoint, keys: subscription.keys },
    payload,
    {
      headers: { Authorization: authorization },
      TTL: ttlSeconds(request.expiresAt, nowMs),
      // RFC 8030 §5.3: "high" may wake the device; everything else can wait for the next wake-up.
      urgency: content.priority === 'high' ? 'high' : 'normal',
      ...(content.collapseKey ? { topic: topicFor(content.collapseKey) } : {}),
      contentEncoding: 'aes128gcm',
    },
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(details.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = String(value);
  }
  // Ours, even if something in the process set web-push's global VAPID details.
  headers.authorization = authorization;
  return { ok: true, request: { url: new URL(details.endpoint), headers, body: details.body } };
}
