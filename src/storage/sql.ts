/**
 * A small async SQL port shared by the SQLite and PostgreSQL adapters. Portable statements are
 * written once with `?` placeholders; the PostgreSQL adapter numbers them. Backend-specific SQL
 * (DDL, bulk writes) lives in each backend's folder.
 */
export type SqlValue = string | number | bigint | boolean | null | Buffer | undefined;

export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /** Runs several `;`-separated statements with no parameters (DDL). */
  exec(sql: string): Promise<void>;
}

export interface SqlDb extends SqlExecutor {
  /** Runs `fn` in one write transaction; commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** JSON columns come back as text from SQLite and as parsed values from PostgreSQL's jsonb. */
export function readJson<T>(value: unknown, fallback: T): T {
  if (value === null || value === undefined) return fallback;
  if (typeof value === 'string') return JSON.parse(value) as T;
  return value as T;
}

/** Integer columns: PostgreSQL's int8 is parsed to number by our pool; SQLite gives number or bigint. */
export function readInt(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') return Number(value);
  return 0;
}

export function readOptionalInt(value: unknown): number | null {
  return value === null || value === undefined ? null : readInt(value);
}
