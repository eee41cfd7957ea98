/**
 * Time-zone maths for the campaign scheduler. Pure: no I/O, no clock; every function takes the instants it
 * needs as whole epoch milliseconds. Zones are IANA names, times of day "HH:MM", dates "YYYY-MM-DD".
 *
 * One rule for wall times that a DST change makes ambiguous (Temporal's 'compatible'): a time in a gap
 * (spring forward) moves forward by the length of the gap, at the offset before it (02:30 → 03:30); a time
 * in an overlap (fall back) is the earlier of its two instants, so it happens once.
 */
import { Cron, type CronOptions } from 'croner';
import { Temporal } from 'temporal-polyfill';

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/**
 * When a campaign fires, in a zone. `cron` is a 5-field expression (minute hour day-of-month month
 * day-of-week) with Vixie-cron semantics, see {@link checkCron}; `every` fires at local time `at`.
 */
export type Recurrence =
  | { cron: string } // minute hour day-of-month month day-of-week, in the zone
  | { every: 'day'; at: string } // every day at local time `at`
  | { every: 'week'; days: Weekday[]; at: string }; // on these weekdays at local time `at`

/** A nightly window in which nothing is sent, e.g. {start:'21:00', end:'08:00'}; may span midnight; start !== end. */
export interface QuietHours {
  start: string;
  end: string;
}

/** Index + 1 is Temporal's ISO `dayOfWeek` (Monday 1 … Sunday 7). */
const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const EVERY_DAY: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7]);

/**
 * Vixie cron: 5 fields only; when both day-of-month and day-of-week are restricted (neither is exactly "*"),
 * a day matching either fires. Minute/hour lists without wildcards or steps ("30 2,14 * * *") are fixed-time
 * jobs: in a DST gap they run once when the gap ends (03:00, not 03:30 like the `every` forms), in an overlap
 * once, at the first pass. Wildcard/step jobs ("*\/30 * * * *") follow real time: none inside a gap, both
 * passes of an overlap.
 */
const CRON_OPTIONS = {
  mode: '5-part',
  domAndDow: false,
  fixedTimeRule: 'no-wildcard',
} as const satisfies CronOptions;

const CRON_FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day-of-week', min: 0, max: 7 },
] as const;

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** True for a time-zone name the runtime knows ("Europe/London", "UTC"); offsets like "+05:30" are not names. */
export function isValidZone(zone: string): boolean {
  // Temporal also accepts offsets and whole ISO strings ("…[Europe/Paris]") as a zone: allow name characters only.
  if (!/^[A-Za-z][\w+\-/]*$/.test(zone)) return false;
  try {
    zonedAt(0, zone);
    return true;
  } catch {
    return false;
  }
}

/** True for a strict 24-hour "HH:MM" from "00:00" to "23:59". */
export function isTimeOfDay(s: string): boolean {
  return /^([01]\d|2[0-3]):[0-5]\d$/.test(s);
}

/** True for a strict "YYYY-MM-DD" that is a real calendar date ("2026-02-29" is not). */
export function isLocalDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  try {
    Temporal.PlainDate.from(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * The instant the wall clock in `zone` shows `date` `time`. Gap (spring forward): the instant just after the
 * gap at the same offset as before (Temporal 'compatible': 02:30 that does not exist → 03:30). Overlap (fall
 * back): the earlier instant. Throws a RangeError for a malformed date or time, or an unknown zone.
 */
export function localToInstant(date: string, time: string, zone: string): number {
  return wallToInstant(parseDate(date), parseTime(time), zone);
}

/** The local calendar date ("YYYY-MM-DD") in `zone` at `instantMs`. */
export function localDateOf(instantMs: number, zone: string): string {
  return zonedAt(instantMs, zone).toPlainDate().toString();
}

/**
 * The first instant >= fromMs at which the local clock in `zone` reads `time`, by the gap/overlap rule of
 * {@link localToInstant}: a time skipped by spring forward gives the instant after the gap, and a time that
 * happens twice at fall back counts once (the earlier pass), so the same wall time is never returned twice.
 */
export function nextLocalTime(fromMs: number, time: string, zone: string): number {
  // Every day qualifies, so the first or second day always has an answer.
  return nextWallTime(fromMs, parseTime(time), zone, EVERY_DAY) as number;
}

/**
 * Checks a 5-field cron expression (minute hour day-of-month month day-of-week): ok, or a sentence for a
 * person saying what is wrong. Seconds/years forms (6 or 7 fields) and nicknames ("@daily") are rejected.
 * Besides numbers, ranges, lists and steps, names (JAN, MON-FRI) and croner's L, W, # and ? are accepted;
 * day-of-week 0 and 7 are both Sunday.
 */
export function checkCron(expr: string): { ok: true } | { ok: false; message: string } {
  const fields = expr.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== CRON_FIELDS.length) {
    const extra = fields.length === 6 || fields.length === 7 ? ' Seconds and years are not supported.' : '';
    return fail(
      `A cron expression needs exactly 5 fields (minute hour day-of-month month day-of-week); "${expr}" has ${fields.length}.${extra}`,
    );
  }
  for (const [i, { name, min, max }] of CRON_FIELDS.entries()) {
    const field = fields[i] as string;
    // Numbers that are values: not a step ("*/15") nor an nth weekday ("FRI#2").
    for (const [value] of field.matchAll(/(?<![/#\d])\d+/g)) {
      if (Number(value) < min || Number(value) > max) {
        return fail(
          `The ${name} field "${field}" has ${value}, but ${name} values go from ${min} to ${max}.`,
        );
      }
    }
    const alone = fields.map((f, j) => (j === i ? f : '*')).join(' ');
    if (!parsesAsCron(alone)) {
      return fail(
        `The ${name} field "${field}" is not valid: use a number (${min}–${max}), *, a range (1-5), a list (1,3,5) or a step (*/15).`,
      );
    }
  }
  return parsesAsCron(expr) ? { ok: true } : fail(`"${expr}" is not a valid cron expression.`);
}

/**
 * The first occurrence strictly after `afterMs` within [startMs, endMs] (both inclusive, either optional), in
 * `zone`; null if there is none. `every` forms keep their local time across DST (09:00 stays 09:00, so its
 * UTC hour moves) and follow {@link localToInstant} in gaps and overlaps; cron follows {@link CRON_OPTIONS}.
 * Throws a RangeError for an unknown zone, a bad cron expression or a bad `at`.
 */
export function nextOccurrence(
  rec: Recurrence,
  zone: string,
  afterMs: number,
  bounds: { startMs?: number; endMs?: number } = {},
): number | null {
  if (!isValidZone(zone)) throw new RangeError(`Unknown time zone "${zone}".`);
  const fromMs = Math.max(afterMs + 1, bounds.startMs ?? -Infinity);
  let next: number | null;
  if ('cron' in rec) {
    next = nextCronRun(rec.cron, zone, fromMs);
  } else {
    const days = rec.every === 'day' ? EVERY_DAY : new Set(rec.days.map((d) => WEEKDAYS.indexOf(d) + 1));
    next = nextWallTime(fromMs, parseTime(rec.at), zone, days);
  }
  return next !== null && next <= (bounds.endMs ?? Infinity) ? next : null;
}

/**
 * True when the recurrence has no occurrence at or after `fromMs` within the bounds: an impossible date
 * (cron "0 0 30 2 *", found by croner, which stops searching at year 3000), a weekly rule with no days,
 * or an end bound before the first occurrence.
 */
export function neverFires(
  rec: Recurrence,
  zone: string,
  fromMs: number,
  bounds?: { startMs?: number; endMs?: number },
): boolean {
  return nextOccurrence(rec, zone, fromMs - 1, bounds) === null;
}

/**
 * If `instantMs` falls inside the quiet window in `zone`, the instant the window ends; otherwise null. The
 * window is [start, end) in local time, from `start` on one day to the next `end` (the following day when it
 * spans midnight). Both ends are placed by {@link localToInstant}: an end inside a spring-forward gap moves
 * later (end 02:30 → 03:30), and in a fall-back overlap the window ends at the first pass of `end`.
 */
export function quietHoursRelease(instantMs: number, zone: string, quiet: QuietHours): number | null {
  const start = parseTime(quiet.start);
  const end = parseTime(quiet.end);
  if (quiet.start === quiet.end) {
    throw new RangeError(`Quiet hours must not start and end at the same time (${quiet.start}).`);
  }
  const spansMidnight = quiet.start > quiet.end;
  const today = zonedAt(instantMs, zone).toPlainDate();
  // A window spanning midnight that covers this instant may have started yesterday.
  for (const startDate of [today.subtract({ days: 1 }), today]) {
    const startMs = wallToInstant(startDate, start, zone);
    const endMs = wallToInstant(spansMidnight ? startDate.add({ days: 1 }) : startDate, end, zone);
    if (startMs <= instantMs && instantMs < endMs) return endMs;
  }
  return null;
}

/** Whole days between two local dates (b - a): negative when b is earlier. */
export function daysBetween(a: string, b: string): number {
  return parseDate(a).until(parseDate(b)).days;
}

/**
 * Parses a duration "30s" | "15m" | "1h" | "7d" | "2w" (positive integer without leading zeros + unit) into
 * ms, or null when malformed, zero or too large. A day is a fixed 24 h, not a local calendar day.
 */
export function parseDuration(s: string): number | null {
  const match = /^([1-9]\d*)([smhdw])$/.exec(s);
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) ? ms : null;
}

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

/** A croner job that is never scheduled (no callback, so no timer). Croner mutates its options: pass a copy. */
function cronJob(expr: string, zone?: string): Cron {
  return new Cron(expr, { ...CRON_OPTIONS, timezone: zone });
}

function parsesAsCron(expr: string): boolean {
  try {
    cronJob(expr);
    return true;
  } catch {
    return false;
  }
}

/** First cron run at or after `fromMs`. Croner returns runs strictly after the date it is given. */
function nextCronRun(expr: string, zone: string, fromMs: number): number | null {
  const check = checkCron(expr);
  if (!check.ok) throw new RangeError(check.message);
  const run = cronJob(expr, zone).nextRun(new Date(fromMs - 1));
  return run ? run.getTime() : null;
}

/** First instant >= fromMs at local `time` on a day whose ISO weekday is in `days`; null when `days` is empty. */
function nextWallTime(
  fromMs: number,
  time: Temporal.PlainTime,
  zone: string,
  days: ReadonlySet<number>,
): number | null {
  let date = zonedAt(fromMs, zone).toPlainDate();
  // Today's time may have passed; a week later the same weekday comes round again.
  for (let i = 0; i <= 7; i++, date = date.add({ days: 1 })) {
    if (!days.has(date.dayOfWeek)) continue;
    const ms = wallToInstant(date, time, zone);
    if (ms >= fromMs) return ms;
  }
  return null;
}

function wallToInstant(date: Temporal.PlainDate, time: Temporal.PlainTime, zone: string): number {
  return date.toPlainDateTime(time).toZonedDateTime(zone, { disambiguation: 'compatible' }).epochMilliseconds;
}

function zonedAt(instantMs: number, zone: string): Temporal.ZonedDateTime {
  return Temporal.Instant.fromEpochMilliseconds(instantMs).toZonedDateTimeISO(zone);
}

function parseTime(s: string): Temporal.PlainTime {
  if (!isTimeOfDay(s)) throw new RangeError(`Expected a time of day "HH:MM", got "${s}".`);
  return Temporal.PlainTime.from(s);
}

function parseDate(s: string): Temporal.PlainDate {
  if (!isLocalDate(s)) throw new RangeError(`Expected a date "YYYY-MM-DD", got "${s}".`);
  return Temporal.PlainDate.from(s);
}
