import { googleError, type GoogleErrorAnswer } from './fcm-sandbox-errors.ts';

/** FCM: data and notification together may carry at most 4 KB. */
const MAX_PAYLOAD_BYTES = 4096;
/** FCM keeps a message at most four weeks. */
const MAX_TTL_S = 28 * 24 * 3600;
const MESSAGE_FIELDS = new Set(['name', 'token', 'topic', 'condition', 'notification', 'data', 'android', 'apns', 'webpush', 'fcm_options']);
const NOTIFICATION_FIELDS = new Set(['title', 'body', 'image']);
const ANDROID_FIELDS = new Set([
  'collapse_key',
  'priority',
  'ttl',
  'restricted_package_name',
  'data',
  'notification',
  'fcm_options',
  'direct_boot_ok',
  'bandwidth_constrained_ok',
  'restricted_satellite_ok',
]);
/** Registration tokens are URL-safe base64 with ':' separators; anything else cannot be one. */
const TOKEN = /^[A-Za-z0-9_:.-]{1,4096}$/;
/** protobuf Duration in JSON: seconds, up to nine fractional digits, then "s". */
const DURATION = /^\d+(\.\d{1,9})?s$/;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function invalid(field: string, message: string, errorCode?: string): GoogleErrorAnswer {
  return googleError(400, message, { badField: field, errorCode: errorCode ?? 'INVALID_ARGUMENT' });
}

function unknownField(fields: Set<string>, value: Json, at: string): GoogleErrorAnswer | null {
  for (const key of Object.keys(value)) {
    if (!fields.has(key)) return invalid(at, `Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`);
  }
  return null;
}

function checkTarget(message: Json): GoogleErrorAnswer | null {
  const targets = ['token', 'topic', 'condition'].filter((k) => message[k] !== undefined);
  if (targets.length === 0) return invalid('message', 'Recipient of the message is not set.');
  if (targets.length > 1) return invalid('message', `Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '${targets[1]}'`);
  const token = message.token;
  if (token !== undefined && (typeof token !== 'string' || !TOKEN.test(token))) {
    return invalid('message.token', 'The registration token is not a valid FCM registration token');
  }
  return null;
}

function checkData(data: unknown, at: string): GoogleErrorAnswer | null {
  if (data === undefined) return null;
  if (!isObject(data)) return invalid(at, `Invalid value at '${at}' (type.googleapis.com/google.protobuf.Struct)`);
  let index = 0;
  for (const [key, value] of Object.entries(data)) {
    // FCM: data values are strings, nothing else.
    if (typeof value !== 'string') return invalid(`${at}[${index}].value`, `Invalid value at '${at}[${index}].value' (TYPE_STRING), ${JSON.stringify(value)}`);
    // FCM: keys it uses itself are refused.
    if (key === 'from' || key === 'notification' || key === 'message_type' || key.startsWith('google.') || key.startsWith('gcm.')) {
      return invalid(`${at}[${index}].key`, `Invalid data payload key: ${key}`);
    }
    index++;
  }
  return null;
}

function checkNotification(notification: unknown): GoogleErrorAnswer | null {
  if (notification === undefined) return null;
  if (!isObject(notification)) return invalid('message.notification', "Invalid value at 'message.notification'");
  const unknown = unknownField(NOTIFICATION_FIELDS, notification, 'message.notification');
  if (unknown) return unknown;
  for (const [key, value] of Object.entries(notification)) {
    if (typeof value !== 'string') return invalid(`message.notification.${key}`, `Invalid value at 'message.notification.${key}' (TYPE_STRING)`);
  }
  return null;
}

function checkAndroid(android: unknown): GoogleErrorAnswer | null {
  if (android === undefined) return null;
  if (!isObject(android)) return invalid('message.android', "Invalid value at 'message.android'");
  const unknown = unknownField(ANDROID_FIELDS, android, 'message.android');
  if (unknown) return unknown;
  const { priority, ttl, collapse_key: collapseKey, notification } = android;
  if (priority !== undefined && priority !== 'NORMAL' && priority !== 'HIGH') {
    return invalid('message.android.priority', `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), ${JSON.stringify(priority)}`);
  }
  if (ttl !== undefined) {
    if (typeof ttl !== 'string' || !DURATION.test(ttl)) return invalid('message.android.ttl', `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(ttl)}`);
    if (Number(ttl.slice(0, -1)) > MAX_TTL_S) return invalid('message.android.ttl', 'TTL must not exceed four weeks (2419200s)');
  }
  if (collapseKey !== undefined && typeof collapseKey !== 'string') return invalid('message.android.collapse_key', "Invalid value at 'message.android.collapse_key' (TYPE_STRING)");
  if (notification !== undefined) {
    if (!isObject(notification)) return invalid('message.android.notification', "Invalid value at 'message.android.notification'");
    const count = notification.notification_count;
    if (count !== undefined && (!Number.isInteger(count) || (count as number) < 0)) {
      return invalid('message.android.notification.notification_count', "Invalid value at 'message.android.notification.notification_count' (TYPE_INT32)");
    }
  }
  return checkData(android.data, 'message.android.data');
}

function payloadBytes(message: Json): number {
  let bytes = 0;
  for (const part of [message.data, message.notification]) {
    if (!isObject(part)) continue;
    for (const [k, v] of Object.entries(part)) bytes += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  }
  return bytes;
}

/**
 * Checks a `messages:send` body the way FCM does, first problem wins: known fields only, exactly
 * one target, data values strings, android priority and ttl well formed, payload ≤ 4 KB.
 */
export function checkSendBody(body: unknown): { ok: true; message: Json; validateOnly: boolean } | { ok: false; error: GoogleErrorAnswer } {
  if (!isObject(body) || !isObject(body.message)) return { ok: false, error: invalid('message', 'Invalid JSON payload received: "message" is required.') };
  const top = unknownField(new Set(['message', 'validate_only']), body, '');
  if (top) return { ok: false, error: top };
  const message = body.message;
  const problem =
    unknownField(MESSAGE_FIELDS, message, 'message') ??
    checkTarget(message) ??
    checkNotification(message.notification) ??
    checkData(message.data, 'message.data') ??
    checkAndroid(message.android);
  if (problem) return { ok: false, error: problem };
  if (payloadBytes(message) > MAX_PAYLOAD_BYTES) return { ok: false, error: invalid('message', 'Message is too big') };
  return { ok: true, message, validateOnly: body.validate_only === true };
}
