/**
 * Bulk writers for the targeting seed: multi-row INSERTs through prepared statements, committed in
 * large transactions. Rows are exactly what Herald's applier writes (times epoch ms, booleans 0/1,
 * JSON as text); only the batching differs.
 */
import type Database from 'better-sqlite3';

type Value = string | number | null;

/** Buffers rows and writes them `rowsPerStatement` at a time; `flush()` writes the remainder. */
export class BulkInsert {
  readonly #full: Database.Statement;
  readonly #sql: (rows: number) => string;
  readonly #db: Database.Database;
  readonly #rowsPerStatement: number;
  readonly #columns: number;
  #buffer: Value[] = [];

  constructor(db: Database.Database, table: string, columns: readonly string[], rowsPerStatement = 100) {
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    this.#sql = (rows) =>
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${Array.from({ length: rows }, () => tuple).join(', ')}`;
    this.#db = db;
    this.#columns = columns.length;
    this.#rowsPerStatement = rowsPerStatement;
    this.#full = db.prepare(this.#sql(rowsPerStatement));
  }

  add(...values: Value[]): void {
    if (values.length !== this.#columns)
      throw new Error(`expected ${this.#columns} values, got ${values.length}`);
    for (const v of values) this.#buffer.push(v);
    if (this.#buffer.length === this.#columns * this.#rowsPerStatement) {
      this.#full.run(this.#buffer);
      this.#buffer = [];
    }
  }

  flush(): void {
    if (this.#buffer.length === 0) return;
    this.#db.prepare(this.#sql(this.#buffer.length / this.#columns)).run(this.#buffer);
    this.#buffer = [];
  }
}

/** Commits every `rows` calls to `tick()`, so the WAL stays small while the seed runs. */
export class Committer {
  #since = 0;
  constructor(
    private readonly db: Database.Database,
    private readonly rows: number,
    private readonly flushAll: () => void,
  ) {
    db.exec('BEGIN');
  }

  tick(): void {
    if (++this.#since < this.rows) return;
    this.flushAll();
    this.db.exec('COMMIT; BEGIN');
    this.#since = 0;
  }

  finish(): void {
    this.flushAll();
    this.db.exec('COMMIT');
  }
}

export interface SecondaryIndex {
  name: string;
  sql: string;
}

/**
 * Drops the secondary indexes of the bulk-loaded tables (building them once at the end, sorted, is
 * far faster than maintaining them row by row) and returns their definitions to recreate them
 * verbatim: the finished file has exactly the schema the migrations created.
 */
export function dropSecondaryIndexes(db: Database.Database, tables: readonly string[]): SecondaryIndex[] {
  const marks = tables.map(() => '?').join(', ');
  const indexes = db
    .prepare(
      `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (${marks}) ORDER BY name`,
    )
    .all(...tables) as SecondaryIndex[];
  for (const index of indexes) db.exec(`DROP INDEX "${index.name}"`);
  return indexes;
}
