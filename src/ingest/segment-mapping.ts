import { HeraldError } from '../core/errors.ts';
import { NATIVE_BY_NAME } from '../profiles/native-attributes.ts';
import type { ProfileUpdateItem } from './ingest-schemas.ts';

/**
 * Maps Segment-spec calls (identify, track, page, screen; https://segment.com/docs/connections/spec/)
 * onto Herald's profile updates, so an unmodified analytics library can send to Herald.
 *
 * - userId is the custom_id; a call with only an anonymousId goes to the profile "anonymous:<id>".
 * - Trait and property names become snake_case (firstName → first_name); nested objects are
 *   flattened with "_" (address.city → address_city), three levels deep.
 * - The traits email and phone, and context.timezone / context.locale, fill the native attributes
 *   when valid; an invalid email or phone is kept as a custom attribute rather than failing the batch.
 * - messageId becomes the event id, so a client's retry of a batch is stored once.
 * - group and alias calls are accepted and ignored.
 */
export type SegmentCall = 'identify' | 'track' | 'page' | 'screen';

export interface SegmentMapping {
  items: { item: ProfileUpdateItem; index: number; call: SegmentCall }[];
  ignored: number;
  /** Messages that could not be mapped at all (no user, no event name, unknown type). */
  problems: NonNullable<HeraldError['details']>;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function snakeCase(name: string): string {
  const out = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64);
  return out.length > 0 ? out : 'property';
}

function flatten(value: Json, prefix: string, depth: number, out: Json): Json {
  for (const [key, raw] of Object.entries(value)) {
    const name = snakeCase(prefix ? `${prefix}_${key}` : key);
    if (isObject(raw)) {
      if (depth < 3) flatten(raw, name, depth + 1, out);
    } else if (Array.isArray(raw)) {
      out[name] = raw.filter((x) => x !== null && typeof x !== 'object').map(String);
    } else if (raw !== undefined) {
      out[name] = raw;
    }
  }
  return out;
}

/** Event properties keep their structure (Herald events take JSON); only names are normalised. */
function normaliseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normaliseKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), normaliseKeys(v)]));
}

function nativeOrCustom(attributes: Json, trait: string, native: string, value: unknown): void {
  if (typeof value !== 'string') return;
  const check = NATIVE_BY_NAME.get(native)!.check(value);
  if (check.ok) {
    attributes[native] = value;
    delete attributes[trait];
  }
}

function customId(message: Json, index: number): string {
  const userId = message.userId ?? message.user_id;
  if ((typeof userId === 'string' && userId.length > 0) || typeof userId === 'number') return String(userId);
  const anonymousId = message.anonymousId ?? message.anonymous_id;
  if ((typeof anonymousId === 'string' && anonymousId.length > 0) || typeof anonymousId === 'number') {
    return `anonymous:${String(anonymousId)}`;
  }
  throw new HeraldError('VALIDATION_FAILED', {
    details: [{ index, path: '/userId', code: 'REQUIRED', message: 'a Segment call needs a userId or an anonymousId' }],
  });
}

function identifyAttributes(message: Json): Json {
  const traits = isObject(message.traits) ? message.traits : {};
  const attributes = flatten(traits, '', 1, {});
  nativeOrCustom(attributes, 'email', '$email_address', traits.email);
  nativeOrCustom(attributes, 'phone', '$phone_number', traits.phone);
  const context = isObject(message.context) ? message.context : {};
  if (typeof context.timezone === 'string' && NATIVE_BY_NAME.get('$timezone')!.check(context.timezone).ok) {
    attributes.$timezone = context.timezone;
  }
  if (typeof context.locale === 'string' && NATIVE_BY_NAME.get('$language')!.check(context.locale).ok) {
    attributes.$language = context.locale;
  }
  return attributes;
}

function eventOf(message: Json, name: string, properties: unknown) {
  const time = message.timestamp ?? message.originalTimestamp;
  return {
    name,
    ...(typeof time === 'string' ? { time } : {}),
    ...(typeof message.messageId === 'string' && message.messageId.length > 0 ? { id: message.messageId.slice(0, 255) } : {}),
    ...(isObject(properties) ? { attributes: normaliseKeys(properties) as Json } : {}),
  };
}

function mapOne(message: unknown, index: number): { item: ProfileUpdateItem; call: SegmentCall } | null {
  if (!isObject(message)) {
    throw new HeraldError('VALIDATION_FAILED', { details: [{ index, path: '', code: 'INVALID_TYPE', message: 'must be an object' }] });
  }
  const type = message.type;
  switch (type) {
    case 'identify':
      return { call: type, item: { identifiers: { custom_id: customId(message, index) }, attributes: identifyAttributes(message) } };
    case 'track': {
      if (typeof message.event !== 'string' || message.event.length === 0) {
        throw new HeraldError('VALIDATION_FAILED', {
          details: [{ index, path: '/event', code: 'REQUIRED', message: 'a track call needs an event name' }],
        });
      }
      return {
        call: type,
        item: { identifiers: { custom_id: customId(message, index) }, events: [eventOf(message, message.event, message.properties)] },
      };
    }
    case 'page':
    case 'screen': {
      const properties = { ...(isObject(message.properties) ? message.properties : {}), ...(message.name ? { name: message.name } : {}) };
      return {
        call: type,
        item: { identifiers: { custom_id: customId(message, index) }, events: [eventOf(message, `${type}_viewed`, properties)] },
      };
    }
    case 'group':
    case 'alias':
      return null;
    default:
      throw new HeraldError('VALIDATION_FAILED', {
        details: [{ index, path: '/type', code: 'INVALID_VALUE', message: 'must be identify, track, page, screen, group or alias' }],
      });
  }
}

/** Maps a list of Segment messages; the ones that cannot be mapped are reported, not thrown. */
export function mapSegmentMessages(messages: unknown[]): SegmentMapping {
  const mapping: SegmentMapping = { items: [], ignored: 0, problems: [] };
  messages.forEach((message, index) => {
    try {
      const mapped = mapOne(message, index);
      if (mapped) mapping.items.push({ ...mapped, index });
      else mapping.ignored++;
    } catch (error) {
      if (error instanceof HeraldError && error.details) mapping.problems.push(...error.details);
      else throw error;
    }
  });
  return mapping;
}

const EVENT_PATHS: [string, string][] = [
  ['/events/0/attributes', '/properties'],
  ['/events/0/name', '/event'],
  ['/events/0/time', '/timestamp'],
  ['/events/0/id', '/messageId'],
];

/** Where in the caller's Segment message a problem found in its mapped Herald item lies. */
export function segmentPath(call: SegmentCall, path: string): string {
  if (path === '/identifiers/custom_id') return '/userId';
  if (call === 'identify' && path.startsWith('/attributes')) return `/traits${path.slice('/attributes'.length)}`;
  for (const [from, to] of EVENT_PATHS) if (path === from || path.startsWith(`${from}/`)) return to + path.slice(from.length);
  return path;
}
