import type { SendOutcome } from '../../delivery-model.ts';
import { permanent, recipientInvalid, retryable, retryAfterMs, sent } from '../../delivery-model.ts';
import type { ApnsAnswer } from './apns-connection.ts';
import type { RejectionVerdict } from './apns-token.ts';

/** Reasons that mean the device token will never work for this app again. */
const DEAD_TOKEN_REASONS = new Set([
  // 410: the app was uninstalled or the token expired.
  'Unregistered',
  'ExpiredToken',
  // 400: not a token APNs knows, or one of another app.
  'BadDeviceToken',
  'DeviceTokenNotForTopic',
]);

/** Reasons about our provider token: re-sign and retry. */
const TOKEN_REASONS = new Set(['ExpiredProviderToken', 'InvalidProviderToken']);

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** APNs error bodies are JSON `{reason, timestamp?}`; anything else leaves the reason unknown. */
function reasonOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as unknown;
    const reason = (parsed as { reason?: unknown } | null)?.reason;
    return typeof reason === 'string' && reason.length > 0 ? reason : undefined;
  } catch {
    return undefined;
  }
}

export interface AnswerContext {
  nowMs: number;
  /** Tells the token signer its token was rejected; answers whether re-signing can help. */
  tokenRejected: () => RejectionVerdict;
}

/** Turns what APNs answered into Herald's outcome (Apple: "Handling notification responses from APNs"). */
export function outcomeOfAnswer(answer: ApnsAnswer, context: AnswerContext): SendOutcome {
  const { status } = answer;
  if (status === 200) {
    // apns-unique-id (development environment) identifies the notification in Apple's delivery log.
    const id = headerValue(answer.headers['apns-unique-id']) ?? headerValue(answer.headers['apns-id']) ?? null;
    return sent(id);
  }
  const reason = reasonOf(answer.body);
  const code = reason ?? `HTTP_${status}`;
  const said = `APNs answered ${status}${reason ? ` ${reason}` : ''}`;
  if (reason && DEAD_TOKEN_REASONS.has(reason) && (status === 400 || status === 410)) {
    return recipientInvalid(reason, `${said}: the device token is no longer valid`, 'disable-token');
  }
  if (status === 410) return recipientInvalid(code, `${said}: the device token is no longer active`, 'disable-token');
  if (status === 403 && reason && TOKEN_REASONS.has(reason)) {
    const verdict = context.tokenRejected();
    if (verdict === 'hopeless') {
      return permanent(reason, `${said} for a freshly signed token: check team_id, key_id and private_key`);
    }
    return retryable(reason, `${said}; the provider token was re-signed`);
  }
  // 429 (TooManyRequests, TooManyProviderTokenUpdates) and server trouble pass with time.
  if (status === 429 || status >= 500) {
    return retryable(code, said, retryAfterMs(headerValue(answer.headers['retry-after']), context.nowMs));
  }
  // Any other 4xx (BadTopic, MissingTopic, PayloadTooLarge, TopicDisallowed, …) repeats on every retry.
  return permanent(code, said);
}
