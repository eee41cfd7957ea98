import { createHash } from 'node:crypto';
import { messageIdFor } from '../delivery/message-id.ts';

/**
 * Dates, strings and holdout buckets as targeting computes them, defined so that SQL can compute exactly the same
 * thing (the bulk compiler mirrors these in `segment-sql.ts`: SQLite calls these very functions,
 * PostgreSQL has `herald_instant` in its store migrations).
 */

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):?(\d{2})))?$/;
export const DAY_MS = 86_400_000;

export const isLeapYear = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeapYear(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * A date attribute as epoch milliseconds: `YYYY-MM-DD` (midnight UTC) or
 * `YYYY-MM-DDThh:mm[:ss[.fraction]]` with `Z` or an offset, naming a real calendar time in years
 * 0001–9999; fractions beyond milliseconds are truncated. Anything else is not a date (undefined).
 */
export function parseInstant(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const m = INSTANT.exec(value);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  const h = Number(m[4] ?? 0);
  const mi = Number(m[5] ?? 0);
  const s = Number(m[6] ?? 0);
  if (h > 23 || mi > 59 || s > 59) return undefined;
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  let offsetMin = 0;
  if (m[8] !== undefined) {
    const [oh, om] = [Number(m[9]), Number(m[10])];
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (oh * 60 + om) * (m[8] === '-' ? -1 : 1);
  }
  return daysFromCivil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 + ms - offsetMin * 60_000;
}

/** Strings order by Unicode code point, as SQLite (BINARY) and PostgreSQL (COLLATE "C") order UTF-8. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point above U+FFFF) sorts after every other UTF-16 unit in code point order.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** `MM-DD` of an instant in UTC. */
export function utcMonthDay(t: number): string {
  const date = new Date(t);
  return `${String(date.getUTCMonth() + 1).padStart(2, '0')}-${String(date.getUTCDate()).padStart(2, '0')}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Today's calendar date at `t` in `timeZone` (UTC when the zone is unknown or unset). */
export function localDate(t: number, timeZone: string | null): { year: number; month: number; day: number } {
  const zone = timeZone ?? 'UTC';
  let format = formatters.get(zone);
  if (!format) {
    try {
      format = localDateFormat(zone);
    } catch {
      format = localDateFormat('UTC');
    }
    if (formatters.size < 1000) formatters.set(zone, format);
  }
  const parts = format.formatToParts(t);
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  return { year: get('year'), month: get('month'), day: get('day') };
}

function localDateFormat(zone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric' });
}

/**
 * The `MM-DD` values whose anniversary is today at `t` in `timeZone`: today's, plus 02-29 on
 * 28 February of a common year.
 */
export function anniversariesToday(t: number, timeZone: string | null): string[] {
  const today = localDate(t, timeZone);
  const md = `${String(today.month).padStart(2, '0')}-${String(today.day).padStart(2, '0')}`;
  return today.month === 2 && today.day === 28 && !isLeapYear(today.year) ? [md, '02-29'] : [md];
}

/**
 * A profile's stable position in [0, 100) for holdouts: the first 32 bits of
 * SHA-256("<salt>:<project>:<custom_id>") scaled to a percentage. PostgreSQL computes the same
 * function in SQL (segment-sql.ts); SQLite calls this one.
 */
export function bucketOf(projectId: string, customId: string, salt: string): number {
  const digest = createHash('sha256').update(`${salt}:${projectId}:${customId}`).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

/** Registers the functions compiled segments and campaign fan-outs call on an SQLite connection. */
export function registerTargetingFunctions(db: {
  function(name: string, options: { deterministic: boolean }, fn: (...args: unknown[]) => unknown): unknown;
}): void {
  db.function('herald_instant', { deterministic: true }, (v) => parseInstant(v) ?? null);
  db.function('herald_message_id', { deterministic: true }, (key) => messageIdFor(String(key)));
  db.function('herald_bucket', { deterministic: true }, (salt, project, customId) => bucketOf(String(project), String(customId), String(salt)));
}
