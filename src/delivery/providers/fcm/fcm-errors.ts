import type { SendOutcome } from '../../delivery-model.ts';
import { permanent, recipientInvalid, retryable, retryAfterMs } from '../../delivery-model.ts';

const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';

/** What an HTTP v1 error answer says: `{error: {code, message, status, details}}`. */
export interface FcmErrorAnswer {
  httpStatus: number;
  /** The FcmError detail's errorCode (UNREGISTERED, QUOTA_EXCEEDED, ...), when present. */
  errorCode: string | null;
  /** The google.rpc status (NOT_FOUND, RESOURCE_EXHAUSTED, UNAUTHENTICATED, ...). */
  status: string | null;
  message: string;
  /** Fields named by a google.rpc.BadRequest detail. */
  badFields: string[];
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Reads an error body defensively: a proxy in between may answer HTML or nothing at all. */
export function parseFcmError(httpStatus: number, body: unknown): FcmErrorAnswer {
  const error = record(record(body).error);
  const details = Array.isArray(error.details) ? error.details.map(record) : [];
  let errorCode: string | null = null;
  const badFields: string[] = [];
  for (const detail of details) {
    if (detail['@type'] === FCM_ERROR_TYPE && typeof detail.errorCode === 'string') errorCode = detail.errorCode;
    if (detail['@type'] === BAD_REQUEST_TYPE && Array.isArray(detail.fieldViolations)) {
      for (const v of detail.fieldViolations.map(record)) if (typeof v.field === 'string') badFields.push(v.field);
    }
  }
  return {
    httpStatus,
    errorCode,
    status: typeof error.status === 'string' ? error.status : null,
    message: typeof error.message === 'string' && error.message !== '' ? error.message : `FCM answered ${httpStatus}`,
    badFields,
  };
}

/**
 * INVALID_ARGUMENT covers both a bad registration token and a bad message; only the former may
 * disable the token. FCM says which by its message, or by naming `message.token` as the bad field.
 */
function aboutRegistrationToken(answer: FcmErrorAnswer): boolean {
  return answer.badFields.includes('message.token') || /registration token/i.test(answer.message);
}

/**
 * Maps an FCM HTTP v1 error answer to a SendOutcome, per the FCM error code reference. A 401 is
 * not handled here: the provider drops its access token first (see fcm-provider.ts).
 */
export function fcmErrorOutcome(answer: FcmErrorAnswer, retryAfterHeader: string | null, nowMs: number): SendOutcome {
  const code = answer.errorCode ?? answer.status ?? `HTTP_${answer.httpStatus}`;
  const why = `FCM answered ${answer.httpStatus} ${code}: ${answer.message}`;
  const errorCode = answer.errorCode ?? '';
  switch (errorCode) {
    // FCM: the token is no longer valid (app uninstalled, token expired) — stop using it.
    case 'UNREGISTERED':
    // FCM: the token belongs to another Firebase project's sender id; it will never work for this one.
    case 'SENDER_ID_MISMATCH':
      return recipientInvalid(errorCode, why, 'disable-token');
    case 'INVALID_ARGUMENT':
      return aboutRegistrationToken(answer) ? recipientInvalid('INVALID_ARGUMENT', why, 'disable-token') : permanent('INVALID_ARGUMENT', why);
    // FCM: too many messages (project, device or topic); Retry-After says when to come back.
    case 'QUOTA_EXCEEDED':
    case 'UNAVAILABLE':
    case 'INTERNAL':
      return retryable(errorCode, why, retryAfterMs(retryAfterHeader, nowMs));
    // FCM: the APNs certificate or web push key is wrong — a configuration problem, not a transient one.
    case 'THIRD_PARTY_AUTH_ERROR':
      return permanent(errorCode, why);
    default:
      break;
  }
  const status = answer.httpStatus;
  if (status === 400 && aboutRegistrationToken(answer)) return recipientInvalid(code, why, 'disable-token');
  if (status === 408 || status === 429 || status >= 500) return retryable(code, why, retryAfterMs(retryAfterHeader, nowMs));
  // A 404 without UNREGISTERED (a wrong project id) or a 403 without SENDER_ID_MISMATCH (FCM API
  // disabled, a role missing) is about Herald's configuration: it must not disable the token.
  return permanent(code, why);
}
