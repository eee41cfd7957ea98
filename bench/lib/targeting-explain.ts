/**
 * BENCH_EXPLAIN=1: for each segment, the SQL Herald's compiler produced and SQLite's query plan for
 * it and for the hand-written query, so a slow segment can be read against the indexes it used.
 */
import type Database from 'better-sqlite3';
import { openSqliteDb } from '../../src/storage/sqlite/sqlite-db.ts';
import { SQLITE_DIALECT } from '../../src/targeting/sql-dialects.ts';
import { matchingQuery, type TargetingOptions } from '../../src/targeting/targeting-reads.ts';
import type { BenchSegment } from './targeting-segments.ts';

type PlanRow = { id: number; parent: number; detail: string };

function plan(db: Database.Database, text: string, params: readonly unknown[]): string[] {
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as PlanRow[];
  const depth = new Map<number, number>([[0, -1]]);
  return rows.map((r) => {
    const d = (depth.get(r.parent) ?? -1) + 1;
    depth.set(r.id, d);
    return `${'  '.repeat(d)}${r.detail}`;
  });
}

export async function explainSegments(
  file: string,
  projectId: string,
  segments: readonly BenchSegment[],
  options: TargetingOptions,
): Promise<Record<string, unknown>[]> {
  const db = openSqliteDb(file, { readonly: true });
  try {
    const out: Record<string, unknown>[] = [];
    for (const s of segments) {
      const q = await matchingQuery(db, SQLITE_DIALECT, projectId, s.segment, options);
      const params = q.params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? Number(p) : p));
      out.push({
        benchmark: 'plan',
        name: s.name,
        herald_sql: q.text.replace(/\s+/g, ' '),
        herald_plan: plan(db.raw, q.text, params),
        raw_sql: s.raw.sql.replace(/\s+/g, ' '),
        raw_plan: plan(db.raw, s.raw.sql, s.raw.params),
      });
    }
    return out;
  } finally {
    await db.close();
  }
}
