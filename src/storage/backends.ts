import path from 'node:path';
import type { IngestLog, LogCapabilities } from '../ingest/ingest-log.ts';
import type { CellStore } from './cell-store.ts';
import type { SqlDb } from './sql.ts';
// Backend modules load on first use: a SQLite-only process never loads pg, and the reverse.
const sqlite = {
  store: () => import('./sqlite/sqlite-cell-store.ts'),
  log: () => import('./sqlite/sqlite-ingest-log.ts'),
  db: () => import('./sqlite/sqlite-db.ts'),
};
const postgres = {
  store: () => import('./postgres/pg-cell-store.ts'),
  log: () => import('./postgres/pg-ingest-log.ts'),
  db: () => import('./postgres/pg-db.ts'),
};

export interface BackendContext {
  /** Relative SQLite paths resolve against the data directory. */
  dataDir: string;
  /** Create the database (file or PostgreSQL database) when it is missing. */
  create: boolean;
}

export interface ControlDb {
  db: SqlDb;
  migrationLock: string | undefined;
}

/** A storage backend: one folder, one entry in BACKENDS. Nothing else names it. */
export interface StorageBackend {
  readonly label: string;
  readonly schemes: readonly string[];
  /** What this backend's log can do, known before opening one. */
  readonly logCapabilities: LogCapabilities;
  openStore(url: string, ctx: BackendContext): Promise<CellStore>;
  openLog(url: string, ctx: BackendContext): Promise<IngestLog>;
  openControl(url: string, ctx: BackendContext): Promise<ControlDb>;
  /** Where a new cell's store and log go, next to the control plane at `controlUrl`. */
  cellUrls(controlUrl: string, cellId: string): { storeUrl: string; logUrl: string };
  /** A URL safe to print: no password. */
  redact(url: string): string;
}

function sqliteFile(url: string, dataDir: string): string {
  const file = url.slice('sqlite:'.length);
  if (file.length === 0) throw new Error(`SQLite URL ${url} names no file`);
  return path.resolve(dataDir, file);
}

const sqliteBackend: StorageBackend = {
  label: 'SQLite',
  schemes: ['sqlite:'],
  logCapabilities: { blocking: true },
  openStore: async (url, ctx) => (await sqlite.store()).SqliteCellStore.open(sqliteFile(url, ctx.dataDir), { create: ctx.create }),
  openLog: async (url, ctx) => (await sqlite.log()).SqliteIngestLog.open(sqliteFile(url, ctx.dataDir), { create: ctx.create }),
  openControl: async (url, ctx) => ({
    db: (await sqlite.db()).openSqliteDb(sqliteFile(url, ctx.dataDir), { create: ctx.create, cacheSizeKb: 2048 }),
    migrationLock: undefined,
  }),
  cellUrls: (_controlUrl, cellId) => ({ storeUrl: `sqlite:cells/${cellId}/store.db`, logUrl: `sqlite:cells/${cellId}/log.db` }),
  redact: (url) => url,
};

async function ensureDatabase(url: string, ctx: BackendContext): Promise<void> {
  if (!ctx.create) return;
  const { ensurePgDatabase } = await postgres.db();
  await ensurePgDatabase(withDatabase(url, 'postgres'), databaseName(url));
}

/** The URL of another database on the same server. */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

const postgresBackend: StorageBackend = {
  label: 'PostgreSQL',
  schemes: ['postgres:', 'postgresql:'],
  logCapabilities: { blocking: false },
  async openStore(url, ctx) {
    await ensureDatabase(url, ctx);
    return (await postgres.store()).PgCellStore.open(url);
  },
  async openLog(url, ctx) {
    await ensureDatabase(url, ctx);
    return (await postgres.log()).PgIngestLog.open(url);
  },
  async openControl(url, ctx) {
    await ensureDatabase(url, ctx);
    const [{ openPgDb }, { PG_MIGRATION_LOCK }] = await Promise.all([postgres.db(), postgres.log()]);
    return { db: openPgDb(url, { max: 4, applicationName: 'herald-control' }), migrationLock: PG_MIGRATION_LOCK };
  },
  cellUrls(controlUrl, cellId) {
    const base = databaseName(controlUrl).replace(/[^a-z0-9_]/g, '_');
    const id = cellId.replace(/[^a-z0-9_]/g, '_');
    return { storeUrl: withDatabase(controlUrl, `${base}_cell_${id}`), logUrl: withDatabase(controlUrl, `${base}_log_${id}`) };
  },
  redact(url) {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  },
};

/** The registry: add a backend here and nowhere else. */
export const BACKENDS: readonly StorageBackend[] = [sqliteBackend, postgresBackend];

export function backendFor(url: string): StorageBackend {
  const scheme = url.slice(0, url.indexOf(':') + 1);
  const backend = BACKENDS.find((b) => b.schemes.includes(scheme));
  if (!backend) {
    throw new Error(`no storage backend for "${scheme}" URLs; known: ${BACKENDS.flatMap((b) => b.schemes).join(', ')}`);
  }
  return backend;
}

export function openStore(url: string, ctx: BackendContext): Promise<CellStore> {
  return backendFor(url).openStore(url, ctx);
}

export function openLog(url: string, ctx: BackendContext): Promise<IngestLog> {
  return backendFor(url).openLog(url, ctx);
}

export function redactUrl(url: string): string {
  try {
    return backendFor(url).redact(url);
  } catch {
    return '(unknown URL)';
  }
}
