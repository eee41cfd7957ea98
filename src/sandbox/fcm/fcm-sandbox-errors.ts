import type { ActiveRule } from '../sandbox-model.ts';

const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';

/** google.rpc.Code names for the HTTP statuses FCM answers. */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** FCM error codes (FcmError.errorCode) with the HTTP status and the sentence FCM gives them. */
const FCM_ERROR_CODES: Record<string, { status: number; message: string }> = {
  INVALID_ARGUMENT: { status: 400, message: 'The registration token is not a valid FCM registration token' },
  UNREGISTERED: { status: 404, message: 'Requested entity was not found.' },
  SENDER_ID_MISMATCH: { status: 403, message: 'SenderId mismatch' },
  QUOTA_EXCEEDED: { status: 429, message: 'Quota exceeded for sending messages to this device or project.' },
  UNAVAILABLE: { status: 503, message: 'The service is currently unavailable.' },
  INTERNAL: { status: 500, message: 'Internal error encountered.' },
  THIRD_PARTY_AUTH_ERROR: { status: 401, message: 'Auth error from APNS or Web Push Service' },
};

/** The FCM error code a bare status stands for, when a rule gives no reason. */
const DEFAULT_CODES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  403: 'SENDER_ID_MISMATCH',
  404: 'UNREGISTERED',
  429: 'QUOTA_EXCEEDED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

export interface GoogleErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: number; message: string; status: string; details?: Record<string, unknown>[] } };
}

/** A Google API error body, `{error: {code, message, status, details}}`, as FCM HTTP v1 answers it. */
export function googleError(
  status: number,
  message: string,
  options: { errorCode?: string; badField?: string; retryAfterSeconds?: number } = {},
): GoogleErrorAnswer {
  const details: Record<string, unknown>[] = [];
  if (options.errorCode) details.push({ '@type': FCM_ERROR_TYPE, errorCode: options.errorCode });
  if (options.badField) details.push({ '@type': BAD_REQUEST_TYPE, fieldViolations: [{ field: options.badField, description: message }] });
  const headers: Record<string, string> = {};
  if (options.retryAfterSeconds !== undefined) headers['retry-after'] = String(options.retryAfterSeconds);
  const error = { code: status, message, status: STATUS_NAMES[status] ?? (status >= 500 ? 'INTERNAL' : 'UNKNOWN') };
  return { status, headers, body: { error: details.length > 0 ? { ...error, details } : error } };
}

/** Turns a misbehaviour rule (status and/or FCM error code as `reason`) into FCM's real error answer. */
export function ruleError(rule: ActiveRule): GoogleErrorAnswer | null {
  const known = rule.reason ? FCM_ERROR_CODES[rule.reason] : undefined;
  const status = rule.status ?? known?.status;
  if (status === undefined) return null;
  const retryAfterSeconds = rule.retryAfterSeconds;
  // A bare 401 is Google's answer to a bad access token: no FCM error code, just UNAUTHENTICATED.
  if (status === 401 && !rule.reason) {
    return googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.', { retryAfterSeconds });
  }
  const errorCode = rule.reason ?? DEFAULT_CODES[status];
  const message = (errorCode && FCM_ERROR_CODES[errorCode]?.message) ?? `sandbox rule: ${status}`;
  const badField = errorCode === 'INVALID_ARGUMENT' ? 'message.token' : undefined;
  return googleError(status, message, { errorCode, badField, retryAfterSeconds });
}
