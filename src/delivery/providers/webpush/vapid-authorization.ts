import webpush from 'web-push';
import type { WebPushCredentials } from './webpush-credentials.ts';

/**
 * RFC 8292 §2: a VAPID token is bound to the push service's origin, not to one message, and may be
 * reused until its `exp` (web-push signs for 12 hours). Signing is two thirds of the cost of
 * building a request, so each origin's token is re-signed hourly rather than per message.
 */
const REUSE_MS = 60 * 60 * 1000;
/** Push services are a handful of origins; the bound only guards against odd subscriptions. */
const MAX_AUDIENCES = 64;

export class VapidAuthorization {
  readonly #byAudience = new Map<string, { header: string; signedAtMs: number }>();

  constructor(private readonly credentials: WebPushCredentials) {}

  /** The `Authorization: vapid t=…, k=…` value for a push service origin. */
  header(audience: string, nowMs: number): string {
    const cached = this.#byAudience.get(audience);
    if (cached && nowMs >= cached.signedAtMs && nowMs - cached.signedAtMs < REUSE_MS) return cached.header;
    const { subject, vapid_public_key, vapid_private_key } = this.credentials;
    const header = webpush.getVapidHeaders(
      audience,
      subject,
      vapid_public_key,
      vapid_private_key,
      'aes128gcm',
    ).Authorization;
    if (this.#byAudience.size >= MAX_AUDIENCES) this.#byAudience.clear();
    this.#byAudience.set(audience, { header, signedAtMs: nowMs });
    return header;
  }
}
