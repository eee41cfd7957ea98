import type { DeliveryRequest, PushContent } from '../../delivery-model.ts';

/** FCM keeps a message at most four weeks; a longer ttl is capped to that. */
const MAX_TTL_S = 28 * 24 * 3600;
/** The data key that carries the deeplink to the app (FCM has no deeplink field for Android). */
export const DEEPLINK_DATA_KEY = 'deeplink';

/** The parts of an HTTP v1 `Message` Herald sends (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages). */
export interface FcmMessage {
  token: string;
  notification?: { title?: string; body?: string };
  data?: Record<string, string>;
  android?: FcmAndroidConfig;
}

export interface FcmAndroidConfig {
  priority?: 'HIGH' | 'NORMAL';
  /** A protobuf Duration in JSON: seconds with an "s" suffix, e.g. "3600s". */
  ttl?: string;
  collapse_key?: string;
  notification?: { sound?: string; notification_count?: number };
}

/** FCM data is a map of strings: other values are written as strings, nulls are left out. */
function dataOf(content: PushContent): Record<string, string> | undefined {
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(content.data ?? {})) {
    if (value !== null) data[key] = String(value);
  }
  if (content.deeplink !== undefined) data[DEEPLINK_DATA_KEY] = content.deeplink;
  return Object.keys(data).length > 0 ? data : undefined;
}

function androidOf(content: PushContent, expiresAt: number | null, nowMs: number): FcmAndroidConfig | undefined {
  const android: FcmAndroidConfig = {};
  if (content.priority) android.priority = content.priority === 'high' ? 'HIGH' : 'NORMAL';
  if (expiresAt !== null) {
    // Whole seconds, rounded down so the device never shows it after Herald's expiry; "0s" = now or never.
    const seconds = Math.min(MAX_TTL_S, Math.max(0, Math.floor((expiresAt - nowMs) / 1000)));
    android.ttl = `${seconds}s`;
  }
  if (content.collapseKey !== undefined) android.collapse_key = content.collapseKey;
  const notification: NonNullable<FcmAndroidConfig['notification']> = {};
  if (content.sound !== undefined) notification.sound = content.sound;
  if (content.badge !== undefined) notification.notification_count = content.badge;
  if (Object.keys(notification).length > 0) android.notification = notification;
  return Object.keys(android).length > 0 ? android : undefined;
}

/** Builds the HTTP v1 message for one delivery to one registration token. */
export function fcmMessage(request: DeliveryRequest, nowMs: number): FcmMessage {
  const content = request.content as PushContent;
  const message: FcmMessage = { token: request.to };
  if (content.title !== undefined || content.body !== undefined) {
    message.notification = {};
    if (content.title !== undefined) message.notification.title = content.title;
    if (content.body !== undefined) message.notification.body = content.body;
  }
  const data = dataOf(content);
  if (data) message.data = data;
  const android = androidOf(content, request.expiresAt, nowMs);
  if (android) message.android = android;
  return message;
}
