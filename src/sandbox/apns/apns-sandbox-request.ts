import type { IncomingHttpHeaders } from 'node:http2';

/** An APNs error answer: the status and the `reason` of its JSON body. */
export interface ApnsRefusal {
  status: number;
  reason: string;
}

/** A request that passed every check: the device token and the parsed payload. */
export interface AcceptedNotification {
  token: string;
  payload: Record<string, unknown>;
}

const MAX_PAYLOAD_BYTES = 4096;
const MAX_COLLAPSE_ID_BYTES = 64;
// Apple documents these apns-push-type values.
const PUSH_TYPES = new Set(['alert', 'background', 'location', 'voip', 'complication', 'fileprovider', 'mdm', 'liveactivity', 'pushtotalk', 'widgets', 'controls']);
// A canonical UUID: 8-4-4-4-12 hex digits.
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// Device tokens are the hex form of the bytes a device registered (32 today; Apple says they may grow).
const DEVICE_TOKEN = /^(?:[0-9a-fA-F]{2}){16,100}$/;

export function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Path, method and the headers APNs checks, in the order it reports them. */
function checkHeaders(headers: IncomingHttpHeaders, expectedTopic: string | undefined): ApnsRefusal | { token: string; pushType: string } {
  if (one(headers, ':method') !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
  const path = one(headers, ':path') ?? '';
  if (!path.startsWith('/3/device/')) return { status: 404, reason: 'BadPath' };
  const token = path.slice('/3/device/'.length);
  if (token === '') return { status: 400, reason: 'MissingDeviceToken' };
  const topic = one(headers, 'apns-topic');
  if (!topic) return { status: 400, reason: 'MissingTopic' };
  // The key's team may push only to the app it was registered for.
  if (expectedTopic !== undefined && topic !== expectedTopic) return { status: 400, reason: 'TopicDisallowed' };
  const pushType = one(headers, 'apns-push-type');
  // Apple only recommends the header for iOS; the sandbox requires it, since Herald always sends it.
  if (!pushType || !PUSH_TYPES.has(pushType)) return { status: 400, reason: 'InvalidPushType' };
  const id = one(headers, 'apns-id');
  if (id !== undefined && !UUID.test(id)) return { status: 400, reason: 'BadMessageId' };
  const priority = one(headers, 'apns-priority');
  if (priority !== undefined && priority !== '10' && priority !== '5' && priority !== '1') return { status: 400, reason: 'BadPriority' };
  // Apple: priority 10 (also the default) is an error for a push that only wakes the app.
  if (pushType === 'background' && priority !== '5' && priority !== '1') return { status: 400, reason: 'BadPriority' };
  const expiration = one(headers, 'apns-expiration');
  if (expiration !== undefined && !/^\d{1,12}$/.test(expiration)) return { status: 400, reason: 'BadExpirationDate' };
  const collapseId = one(headers, 'apns-collapse-id');
  if (collapseId !== undefined && Buffer.byteLength(collapseId) > MAX_COLLAPSE_ID_BYTES) return { status: 400, reason: 'BadCollapseId' };
  if (!DEVICE_TOKEN.test(token)) return { status: 400, reason: 'BadDeviceToken' };
  return { token, pushType };
}

/**
 * The payload must be a JSON object with an `aps` dictionary, at most 4 KB, and match its push
 * type: a background push carries `content-available: 1` and nothing the user would see; an alert
 * shows, sounds or badges something. (Real APNs may silently drop a mismatch; the sandbox says so.)
 */
function checkPayload(body: Buffer, pushType: string): { refusal: ApnsRefusal } | { payload: Record<string, unknown> } {
  if (body.length === 0) return { refusal: { status: 400, reason: 'PayloadEmpty' } };
  if (body.length > MAX_PAYLOAD_BYTES) return { refusal: { status: 413, reason: 'PayloadTooLarge' } };
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    return { refusal: { status: 400, reason: 'BadPayload' } };
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return { refusal: { status: 400, reason: 'BadPayload' } };
  const aps = (payload as { aps?: unknown }).aps;
  if (typeof aps !== 'object' || aps === null || Array.isArray(aps)) return { refusal: { status: 400, reason: 'BadPayload' } };
  const a = aps as Record<string, unknown>;
  const visible = a.alert !== undefined || a.sound !== undefined || a.badge !== undefined;
  if (pushType === 'background' && (a['content-available'] !== 1 || visible)) return { refusal: { status: 400, reason: 'InvalidPushType' } };
  if (pushType === 'alert' && !visible) return { refusal: { status: 400, reason: 'InvalidPushType' } };
  return { payload: payload as Record<string, unknown> };
}

/** Everything APNs checks about a request once the provider token is accepted. */
export function checkNotification(headers: IncomingHttpHeaders, body: Buffer, expectedTopic: string | undefined): ApnsRefusal | AcceptedNotification {
  const head = checkHeaders(headers, expectedTopic);
  if ('reason' in head) return head;
  const checked = checkPayload(body, head.pushType);
  return 'refusal' in checked ? checked.refusal : { token: head.token, payload: checked.payload };
}
