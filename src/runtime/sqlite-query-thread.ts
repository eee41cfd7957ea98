import { parentPort, workerData } from 'node:worker_threads';
import type { SqlValue } from '../storage/sql.ts';
import { readBatch, sqliteParams } from '../storage/query-runner.ts';
import { openSqlite, type SqliteDatabase } from '../storage/sqlite/sqlite-db.ts';
import { toWire } from './threads.ts';

/**
 * Long read-only queries of one SQLite cell (segment estimates and streams) run here, so that a
 * scan of a million profiles never stalls the event loop that answers the API. Each open cursor
 * has a connection of its own (one snapshot for the whole stream); `all` shares one.
 */
type Row = Record<string, unknown>;
type Request =
  | { id: number; op: 'all'; text: string; params: SqlValue[] }
  | { id: number; op: 'open'; text: string; params: SqlValue[] }
  | { id: number; op: 'next'; cursor: number; size: number }
  | { id: number; op: 'release'; cursor: number };

const { file } = workerData as { file: string };
const port = parentPort!;
const open = () => openSqlite(file, { readonly: true, cacheSizeKb: 16 * 1024 });
let shared: SqliteDatabase | undefined;
let nextCursor = 1;
const cursors = new Map<number, { db: SqliteDatabase; rows: IterableIterator<Row> }>();

function release(cursor: number): void {
  const c = cursors.get(cursor);
  if (!c) return;
  cursors.delete(cursor);
  c.rows.return?.();
  c.db.close();
}

function handle(m: Request): unknown {
  switch (m.op) {
    case 'all':
      shared ??= open();
      return shared.prepare(m.text).all(...sqliteParams(m.params));
    case 'open': {
      const db = open();
      try {
        const rows = db.prepare(m.text).iterate(...sqliteParams(m.params)) as IterableIterator<Row>;
        const cursor = nextCursor++;
        cursors.set(cursor, { db, rows });
        return cursor;
      } catch (error) {
        db.close();
        throw error;
      }
    }
    case 'next': {
      const c = cursors.get(m.cursor);
      if (!c) throw new Error(`cursor ${m.cursor} is not open`);
      const rows = readBatch(c.rows, m.size);
      if (rows.length < m.size) release(m.cursor);
      return rows;
    }
    case 'release':
      release(m.cursor);
      return null;
  }
}

port.on('message', (m: Request | { op: 'close' }) => {
  if (m.op === 'close') {
    for (const cursor of [...cursors.keys()]) release(cursor);
    shared?.close();
    port.close();
    return;
  }
  try {
    port.postMessage({ id: m.id, ok: true, result: handle(m) });
  } catch (error) {
    if (m.op === 'all') {
      shared?.close();
      shared = undefined;
    }
    port.postMessage({ id: m.id, ok: false, error: toWire(error) });
  }
});
