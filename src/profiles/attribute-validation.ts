import type { AttributePatch, AttributePatchValue, NativeField } from './profile-model.ts';
import { MAX_ARRAY_ITEMS } from './profile-model.ts';
import { NATIVE_BY_NAME } from './native-attributes.ts';
import { ISO_DATE, ISO_DATETIME } from './attribute-types.ts';

export { inferAttributeType } from './attribute-types.ts';

export const MAX_ATTRIBUTES = 100;
export const MAX_STRING_LENGTH = 2048;
export const MAX_EVENT_ATTRIBUTE_DEPTH = 5;
export const ATTRIBUTE_NAME = /^[a-z0-9_]{1,64}$/;

/** A problem found in a request, at a JSON pointer relative to the item. */
export interface Problem {
  path: string;
  code: string;
  message: string;
}

/** JSON pointer escaping (RFC 6901). */
export function pointer(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}/${key}`;
  return key.includes('~') || key.includes('/') ? `${base}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}` : `${base}/${key}`;
}

/** True when the YYYY-MM-DD prefix and any hh:mm[:ss] name a real calendar time (V8 rolls 02-30 over to March). */
export function isRealDateTime(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(value);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return false;
  return Number(m[4] ?? 0) <= 23 && Number(m[5] ?? 0) <= 59 && Number(m[6] ?? 0) <= 59;
}

/** Full date-times are stored in UTC (`…Z`) so that they compare correctly as text; dates stay dates. */
function normaliseString(value: string): string | null {
  const dateTime = ISO_DATETIME.test(value);
  if (!dateTime && !ISO_DATE.test(value)) return value;
  if (!isRealDateTime(value)) return null;
  return dateTime ? new Date(Date.parse(value)).toISOString() : value;
}

function checkString(value: string, path: string, problems: Problem[]): string | undefined {
  if (value.length > MAX_STRING_LENGTH) {
    problems.push({ path, code: 'STRING_TOO_LONG', message: `must be at most ${MAX_STRING_LENGTH} characters` });
    return undefined;
  }
  const normal = normaliseString(value);
  if (normal === null) {
    problems.push({ path, code: 'INVALID_DATE', message: 'looks like an ISO 8601 date but is not a real date' });
    return undefined;
  }
  return normal;
}

function checkStringArray(value: unknown[], path: string, problems: Problem[]): string[] | undefined {
  if (value.length > MAX_ARRAY_ITEMS) {
    problems.push({ path, code: 'ARRAY_TOO_LONG', message: `must have at most ${MAX_ARRAY_ITEMS} items` });
    return undefined;
  }
  const before = problems.length;
  value.forEach((item, i) => {
    if (typeof item !== 'string') {
      problems.push({ path: pointer(path, i), code: 'INVALID_ATTRIBUTE_TYPE', message: 'array items must be strings' });
    } else if (item.length > MAX_STRING_LENGTH) {
      problems.push({
        path: pointer(path, i),
        code: 'STRING_TOO_LONG',
        message: `must be at most ${MAX_STRING_LENGTH} characters`,
      });
    }
  });
  return problems.length === before ? (value as string[]) : undefined;
}

const NOT_FINITE = 'must be a finite number';

function checkCustomValue(value: unknown, path: string, problems: Problem[]): AttributePatchValue | undefined {
  if (value === null) return null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    problems.push({ path, code: 'INVALID_NUMBER', message: NOT_FINITE });
    return undefined;
  }
  if (typeof value === 'string') return checkString(value, path, problems);
  if (Array.isArray(value)) return checkStringArray(value, path, problems);
  if (typeof value === 'object') {
    const op = value as Record<string, unknown>;
    const keys = Object.keys(op);
    if (keys.length === 0 || keys.some((k) => k !== '$add' && k !== '$remove')) {
      problems.push({
        path,
        code: 'INVALID_ATTRIBUTE_TYPE',
        message: 'an object value must be an array operation: {"$add": [...]} and/or {"$remove": [...]}',
      });
      return undefined;
    }
    const out: { $add?: string[]; $remove?: string[] } = {};
    for (const key of keys as ('$add' | '$remove')[]) {
      const items = op[key];
      if (!Array.isArray(items)) {
        problems.push({ path: pointer(path, key), code: 'INVALID_ATTRIBUTE_TYPE', message: 'must be an array of strings' });
        continue;
      }
      const checked = checkStringArray(items, pointer(path, key), problems);
      if (checked) out[key] = checked;
    }
    return out;
  }
  problems.push({ path, code: 'INVALID_ATTRIBUTE_TYPE', message: 'unsupported value type' });
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a profile's `attributes` object and returns the normalised patch. Every problem is
 * reported with its path (relative to `basePath`); the patch is only meaningful when none were.
 */
export function validateAttributes(value: unknown, basePath: string, problems: Problem[]): AttributePatch {
  const patch: AttributePatch = { natives: {}, custom: {} };
  if (!isPlainObject(value)) {
    problems.push({ path: basePath, code: 'INVALID_TYPE', message: 'must be an object' });
    return patch;
  }
  const names = Object.keys(value);
  if (names.length > MAX_ATTRIBUTES) {
    problems.push({
      path: basePath,
      code: 'TOO_MANY_ATTRIBUTES',
      message: `must have at most ${MAX_ATTRIBUTES} attributes, got ${names.length}`,
    });
  }
  for (const name of names) {
    const path = pointer(basePath, name);
    const raw = value[name];
    if (name.startsWith('$')) {
      const native = NATIVE_BY_NAME.get(name);
      if (!native) {
        problems.push({
          path,
          code: 'UNKNOWN_NATIVE_ATTRIBUTE',
          message: `"${name}" is not a native attribute; native attributes are ${[...NATIVE_BY_NAME.keys()].join(', ')}`,
        });
      } else if (raw === null) {
        (patch.natives as Record<NativeField, string | null>)[native.field] = null;
      } else if (typeof raw !== 'string') {
        problems.push({ path, code: 'INVALID_ATTRIBUTE_TYPE', message: 'must be a string or null' });
      } else {
        const checked = native.check(raw);
        if (checked.ok) (patch.natives as Record<NativeField, string | null>)[native.field] = checked.value;
        else problems.push({ path, code: checked.code, message: checked.message });
      }
      continue;
    }
    if (!ATTRIBUTE_NAME.test(name)) {
      problems.push({
        path,
        code: 'INVALID_ATTRIBUTE_NAME',
        message: 'attribute names are 1 to 64 characters of a-z, 0-9 and _',
      });
      continue;
    }
    const checked = checkCustomValue(raw, path, problems);
    if (checked !== undefined) patch.custom[name] = checked;
  }
  return patch;
}

/**
 * Event attributes are free-form JSON (objects and arrays of any values), bounded in names, size
 * and depth, so an event property like `products: [{...}]` survives as sent.
 */
export function validateEventAttributes(value: unknown, basePath: string, problems: Problem[]): void {
  if (!isPlainObject(value)) {
    problems.push({ path: basePath, code: 'INVALID_TYPE', message: 'must be an object' });
    return;
  }
  checkJson(value, basePath, 1, problems);
}

function checkJson(value: unknown, path: string, depth: number, problems: Problem[]): void {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    problems.push({ path, code: 'INVALID_NUMBER', message: NOT_FINITE });
    return;
  }
  if (typeof value === 'string') {
    if (value.length > MAX_STRING_LENGTH) {
      problems.push({ path, code: 'STRING_TOO_LONG', message: `must be at most ${MAX_STRING_LENGTH} characters` });
    }
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth > MAX_EVENT_ATTRIBUTE_DEPTH) {
    problems.push({ path, code: 'TOO_DEEP', message: `must nest at most ${MAX_EVENT_ATTRIBUTE_DEPTH} levels` });
    return;
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_ARRAY_ITEMS) {
      problems.push({ path, code: 'ARRAY_TOO_LONG', message: `must have at most ${MAX_ARRAY_ITEMS} items` });
      return;
    }
    value.forEach((item, i) => checkJson(item, pointer(path, i), depth + 1, problems));
    return;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_ATTRIBUTES) {
    problems.push({ path, code: 'TOO_MANY_ATTRIBUTES', message: `must have at most ${MAX_ATTRIBUTES} properties` });
    return;
  }
  for (const [name, item] of entries) {
    if (!ATTRIBUTE_NAME.test(name)) {
      problems.push({
        path: pointer(path, name),
        code: 'INVALID_ATTRIBUTE_NAME',
        message: 'property names are 1 to 64 characters of a-z, 0-9 and _',
      });
      continue;
    }
    checkJson(item, pointer(path, name), depth + 1, problems);
  }
}

/**
 * Reports every string (value or key) holding U+0000, anywhere in `value`. PostgreSQL cannot
 * store it in text or jsonb, so it is refused at the edge for every backend alike. Iterative:
 * a hostile body nested a million levels deep must not overflow the stack.
 */
export function checkNoNul(value: unknown, path: string, problems: Problem[]): void {
  // Paths are built only for a problem: each stack entry keeps its parent and key.
  interface At {
    parent: At | undefined;
    key: string | number;
  }
  const where = (at: At | undefined): string => (at ? pointer(where(at.parent), at.key) : path);
  const stack: [unknown, At | undefined][] = [[value, undefined]];
  while (stack.length > 0) {
    const [item, at] = stack.pop()!;
    if (typeof item === 'string') {
      if (item.includes('\u0000')) {
        problems.push({ path: where(at), code: 'INVALID_CHARACTER', message: 'must not contain the NUL character (U+0000)' });
      }
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push([item[i], { parent: at, key: i }]);
    } else if (isPlainObject(item)) {
      const keys = Object.keys(item);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        const child: At = { parent: at, key };
        if (key.includes('\u0000')) {
          problems.push({ path: where(child), code: 'INVALID_CHARACTER', message: 'names must not contain the NUL character (U+0000)' });
        }
        stack.push([item[key], child]);
      }
    }
  }
}
