import type { SqlValue } from './sql.ts';

type Row = Record<string, unknown>;

/**
 * Runs long read-only queries (segment estimates and streams) for a store whose calls block the
 * calling thread (SQLite): in-process by default, or on a thread of its own (see
 * src/runtime/sqlite-query-runner.ts) so that a one-second scan never stalls the API.
 */
export interface ReadQueryRunner {
  all(text: string, params: readonly SqlValue[]): Promise<Row[]>;
  /** The rows in batches of `size`, all from one snapshot; stopping early releases it. */
  batches(text: string, params: readonly SqlValue[], size: number): AsyncIterable<Row[]>;
  close(): Promise<void>;
}

/** SQLite parameters: booleans as 0/1, undefined as NULL. */
export function sqliteParams(params: readonly SqlValue[]): unknown[] {
  return params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? Number(p) : p));
}

/** Up to `size` rows from an open statement iterator. */
export function readBatch(rows: IterableIterator<Row>, size: number): Row[] {
  const batch: Row[] = [];
  while (batch.length < size) {
    const next = rows.next();
    if (next.done) break;
    batch.push(next.value);
  }
  return batch;
}
