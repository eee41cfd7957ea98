import type { ErrorDetail } from '../core/errors.ts';
import { HeraldError } from '../core/errors.ts';
import type { Problem } from '../profiles/attribute-validation.ts';
import { ISO_DATETIME } from '../profiles/attribute-types.ts';
import { checkNoNul, isRealDateTime, pointer, validateAttributes, validateEventAttributes } from '../profiles/attribute-validation.ts';
import type { EventRecord, InstallationRecord, ProfileUpdateRecord } from './records.ts';
import { compileShape } from './shape-check.ts';
import { InstallationBody, MAX_BATCH_ITEMS, ProfileUpdateItem as ProfileUpdateItemSchema } from './ingest-schemas.ts';

export const MAX_EVENT_AGE_MS = 30 * 86_400_000;
export const MAX_EVENT_LEAD_MS = 3_600_000;

const itemShape = compileShape(ProfileUpdateItemSchema);
const installationShape = compileShape(InstallationBody);

 
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function fail(details: ErrorDetail[]): never {
  throw new HeraldError('VALIDATION_FAILED', { details });
}

function checkIdentifier(value: string, path: string, problems: Problem[]): void {
  if (CONTROL_CHARS.test(value)) problems.push({ path, code: 'INVALID_IDENTIFIER', message: 'must not contain control characters' });
}

export function eventTime(raw: string | number | undefined, nowMs: number, path: string, problems: Problem[]): number {
  if (raw === undefined) return nowMs;
  let ms: number;
  if (typeof raw === 'number') {
    ms = raw;
  } else if (ISO_DATETIME.test(raw) && isRealDateTime(raw)) {
    ms = Date.parse(raw);
  } else {
    problems.push({ path, code: 'INVALID_TIME', message: 'must be an ISO 8601 date-time with a zone, like 2026-05-01T10:00:00Z' });
    return nowMs;
  }
  if (!Number.isFinite(ms)) {
    problems.push({ path, code: 'INVALID_TIME', message: 'is not a real date-time' });
  } else if (ms < nowMs - MAX_EVENT_AGE_MS) {
    problems.push({ path, code: 'EVENT_TIME_TOO_OLD', message: 'must be at most 30 days in the past' });
  } else if (ms > nowMs + MAX_EVENT_LEAD_MS) {
    problems.push({ path, code: 'EVENT_TIME_IN_FUTURE', message: 'must be at most 1 hour in the future' });
  }
  return ms;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks one item beyond its shape and builds its log record. The domain rules run on every part
 * whose basic type is right even when the shape check failed elsewhere, so one response lists
 * every problem of the item.
 */
function checkItem(item: unknown, projectId: string, nowMs: number, problems: Problem[]): ProfileUpdateRecord | undefined {
  const shapeOk = itemShape.check(item, '', problems);
  checkNoNul(item, '', problems);
  if (!isObject(item)) return undefined;
  const ids = item.identifiers;
  const customId = isObject(ids) && typeof ids.custom_id === 'string' ? ids.custom_id : undefined;
  if (customId !== undefined) checkIdentifier(customId, '/identifiers/custom_id', problems);
  const attributes = isObject(item.attributes) ? validateAttributes(item.attributes, '/attributes', problems) : undefined;
  const events: EventRecord[] = [];
  if (Array.isArray(item.events)) {
    item.events.forEach((event: unknown, i) => {
      if (!isObject(event)) return;
      const base = pointer('/events', i);
      const name = typeof event.name === 'string' ? event.name : '';
      if (CONTROL_CHARS.test(name)) {
        problems.push({ path: `${base}/name`, code: 'INVALID_EVENT_NAME', message: 'must not contain control characters' });
      }
      const time = typeof event.time === 'string' || typeof event.time === 'number' ? event.time : undefined;
      const out: EventRecord = { name, time_ms: eventTime(time, nowMs, `${base}/time`, problems) };
      if (typeof event.id === 'string') {
        checkIdentifier(event.id, `${base}/id`, problems);
        out.id = event.id;
      }
      if (isObject(event.attributes)) {
        validateEventAttributes(event.attributes, `${base}/attributes`, problems);
        out.attributes = event.attributes;
      }
      events.push(out);
    });
  }
  if (!shapeOk || customId === undefined) return undefined;
  const record: ProfileUpdateRecord = { kind: 'profile.update', project_id: projectId, custom_id: customId, received_at: nowMs };
  if (attributes) record.attributes = attributes;
  if (events.length > 0) record.events = events;
  return record;
}

/**
 * Validates a `POST /v1/profiles/update` body. Returns one log record per item, or throws
 * VALIDATION_FAILED listing every problem of every item (I9: a rejected request changes nothing).
 */
export function validateProfileUpdates(
  body: unknown,
  projectId: string,
  nowMs: number,
  options: { allowEmpty?: boolean } = {},
): ProfileUpdateRecord[] {
  if (!Array.isArray(body)) {
    fail([{ path: '', code: 'INVALID_TYPE', message: 'the body must be a JSON array of profile updates' }]);
  }
  if (body.length > MAX_BATCH_ITEMS) {
    throw new HeraldError('BATCH_TOO_LARGE', {
      message: `A request may carry at most ${MAX_BATCH_ITEMS} items; this one has ${body.length}. Split it into several requests.`,
    });
  }
  if (body.length === 0 && !options.allowEmpty) fail([{ path: '', code: 'TOO_FEW_ITEMS', message: 'the array must hold at least one item' }]);
  const details: ErrorDetail[] = [];
  const records: ProfileUpdateRecord[] = [];
  body.forEach((item: unknown, index) => {
    const problems: Problem[] = [];
    const record = checkItem(item, projectId, nowMs, problems);
    if (record) records.push(record);
    for (const p of problems) details.push({ index, ...p });
  });
  if (details.length > 0) fail(details);
  return records;
}

const HEX_TOKEN = /^[0-9a-fA-F]{64,200}$/;
const FCM_TOKEN = /^[A-Za-z0-9_:\-.]{20,4096}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

function base64urlBytes(value: string): number {
  return Buffer.from(value, 'base64url').length;
}

function checkWebPush(sub: NonNullable<InstallationBody['web_push']>, problems: Problem[]): void {
  let url: URL | undefined;
  try {
    url = new URL(sub.endpoint);
  } catch {
    url = undefined;
  }
  // Push services are https; plain http is accepted only on loopback, where the sandbox's runs.
  const loopback = url !== undefined && (url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]');
  if (url?.protocol !== 'https:' && !(url?.protocol === 'http:' && loopback)) {
    problems.push({ path: '/web_push/endpoint', code: 'INVALID_URL', message: 'must be an https URL' });
  }
  if (!BASE64URL.test(sub.keys.p256dh) || base64urlBytes(sub.keys.p256dh) !== 65) {
    problems.push({ path: '/web_push/keys/p256dh', code: 'INVALID_KEY', message: 'must be a base64url uncompressed P-256 public key (65 bytes)' });
  }
  if (!BASE64URL.test(sub.keys.auth) || base64urlBytes(sub.keys.auth) !== 16) {
    problems.push({ path: '/web_push/keys/auth', code: 'INVALID_KEY', message: 'must be a base64url 16-byte secret' });
  }
}

/** Validates a `POST /v1/installations` body into its log record, or throws VALIDATION_FAILED. */
export function validateInstallation(body: unknown, projectId: string, nowMs: number): InstallationRecord {
  const problems: Problem[] = [];
  const shapeOk = installationShape.check(body, '', problems);
  checkNoNul(body, '', problems);
  if (!shapeOk) fail(problems);
  const input = body as InstallationBody;
  checkIdentifier(input.install_id, '/install_id', problems);
  if (input.custom_id !== undefined) checkIdentifier(input.custom_id, '/custom_id', problems);
  const token = input.push_token;
  if (token !== undefined && token !== null) {
    if (input.platform === 'web') {
      problems.push({ path: '/push_token', code: 'INVALID_FIELD_FOR_PLATFORM', message: 'web installations use web_push, not push_token' });
    } else if (input.platform === 'ios' && !HEX_TOKEN.test(token)) {
      problems.push({ path: '/push_token', code: 'INVALID_PUSH_TOKEN', message: 'an APNs device token is 64 or more hexadecimal characters' });
    } else if (input.platform === 'android' && !FCM_TOKEN.test(token)) {
      problems.push({ path: '/push_token', code: 'INVALID_PUSH_TOKEN', message: 'is not an FCM registration token' });
    }
  }
  if (input.web_push) {
    if (input.platform !== 'web') {
      problems.push({ path: '/web_push', code: 'INVALID_FIELD_FOR_PLATFORM', message: 'only web installations have a web_push subscription' });
    } else {
      checkWebPush(input.web_push, problems);
    }
  }
  if (problems.length > 0) fail(problems);
  const record: InstallationRecord = {
    kind: 'installation.upsert',
    project_id: projectId,
    install_id: input.install_id,
    platform: input.platform,
    received_at: nowMs,
  };
  if (input.custom_id !== undefined) record.custom_id = input.custom_id;
  if (token !== undefined) record.push_token = input.platform === 'ios' && token ? token.toLowerCase() : token;
  if (input.web_push !== undefined) record.web_push = input.web_push;
  if (input.push_enabled !== undefined) record.push_enabled = input.push_enabled;
  if (input.app_version !== undefined) record.app_version = input.app_version;
  return record;
}
