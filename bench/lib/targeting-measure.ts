/**
 * Timing and result checks for the targeting benchmark: one bulk run (Herald's stream or the
 * hand-written query) reduced to a count and an order-sensitive checksum of the ids, so two result
 * sets of hundreds of thousands of profiles compare without holding both in memory.
 */
import type Database from 'better-sqlite3';
import type { SegmentEstimate } from '../../src/targeting/targeting-reads.ts';
import type { HeraldTargeting } from './targeting-herald.ts';
import type { BenchSegment, RawQuery } from './targeting-segments.ts';

/** Count and FNV-1a checksum of a sequence of ids; equal digests mean equal sets in the same order. */
export class IdDigest {
  count = 0;
  #hash = 0x811c9dc5;
  #previous = -Infinity;
  /** False as soon as an id is not greater than the one before (the contract is id order). */
  ascending = true;
  readonly ids: number[] | undefined;

  constructor(keepIds = false) {
    this.ids = keepIds ? [] : undefined;
  }

  add(id: number): void {
    this.count++;
    if (id <= this.#previous) this.ascending = false;
    this.#previous = id;
    this.#hash = Math.imul(this.#hash ^ (id & 0xffff), 16777619);
    this.#hash = Math.imul(this.#hash ^ (id >>> 16), 16777619);
    this.ids?.push(id);
  }

  get checksum(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, '0');
  }

  equals(other: IdDigest): boolean {
    return this.count === other.count && this.checksum === other.checksum;
  }
}

export interface Timed<T> {
  seconds: number;
  value: T;
}

export async function timed<T>(fn: () => Promise<T> | T): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

export function rawRun(db: Database.Database, query: RawQuery, keepIds = false): IdDigest {
  const digest = new IdDigest(keepIds);
  for (const row of db
    .prepare(query.sql)
    .raw(true)
    .iterate(...query.params) as IterableIterator<[number, string]>)
    digest.add(row[0]);
  return digest;
}

export async function heraldRun(
  herald: HeraldTargeting,
  segment: BenchSegment,
  keepIds = false,
): Promise<IdDigest> {
  const digest = new IdDigest(keepIds);
  for await (const batch of herald.matchingIds(segment.segment)) for (const id of batch.ids) digest.add(id);
  return digest;
}

/**
 * The estimate, hand-written: the segment's raw query as a CTE, then one pass counting who each
 * channel reaches (push per platform: enabled, not refused, with a token or subscription; email and
 * SMS: an address, marketing consent, not suppressed) — what Herald's estimate answers.
 */
export function rawEstimate(db: Database.Database, query: RawQuery, projectId: string): SegmentEstimate {
  // Uncorrelated subqueries (the project is a bound parameter): each list is built once, from the
  // store's push_reachable column (permission, a token or subscription, no refusal) and its index.
  const push = (platform: string | null): string =>
    `p.id IN (SELECT profile_id FROM installations WHERE project_id = :project AND push_reachable = 1${platform ? ` AND platform = '${platform}'` : ''})`;
  const consented = (column: string, consent: string, channel: string): string =>
    `(p.${column} IS NOT NULL AND p.${consent} = 'subscribed'
      AND p.${column} NOT IN (SELECT address FROM suppressions WHERE project_id = :project AND channel = '${channel}'))`;
  const row = db
    .prepare(
      `WITH s AS (${query.sql})
       SELECT count(*) AS total, sum(${push(null)}) AS push, sum(${push('ios')}) AS ios, sum(${push('android')}) AS android,
         sum(${push('web')}) AS web, sum(${consented('email', 'email_marketing', 'email')}) AS email,
         sum(${consented('phone', 'sms_marketing', 'sms')}) AS sms
       FROM s JOIN profiles p ON p.id = s.id`,
    )
    .get(...query.params, { project: projectId }) as Record<string, number | null>;
  const n = (k: string): number => row[k] ?? 0;
  return {
    total: n('total'),
    reachable: {
      push: { any: n('push'), ios: n('ios'), android: n('android'), web: n('web') },
      email: n('email'),
      sms: n('sms'),
    },
  };
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
};

export function percentiles(values: readonly number[]): {
  p50: number;
  p90: number;
  p99: number;
  max: number;
} {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number): number =>
    sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

/** Is `id` in an ascending list? */
export function sortedHas(ids: Int32Array, id: number): boolean {
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = ids[mid]!;
    if (v === id) return true;
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
