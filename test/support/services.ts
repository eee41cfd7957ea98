import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * PostgreSQL for tests: suites run when HERALD_TEST_PG_URL is set and are skipped (with the
 * reason) when it is not — unless HERALD_TEST_REQUIRE_SERVICES=1 (set by .ci/run), which turns a
 * missing service into a failure so CI cannot pass without running them.
 */
export const PG_URL = process.env.HERALD_TEST_PG_URL;
const REQUIRED = process.env.HERALD_TEST_REQUIRE_SERVICES === '1';

if (REQUIRED && !PG_URL) throw new Error('HERALD_TEST_REQUIRE_SERVICES=1 but HERALD_TEST_PG_URL is not set');

/** `skip` option for node:test: false when PostgreSQL is available, else the reason. */
export const skipWithoutPg: string | false = PG_URL ? false : 'HERALD_TEST_PG_URL is not set (PostgreSQL suites skipped)';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty PostgreSQL database with a random name; `drop` removes it. */
export async function createTestDatabase(prefix = 'herald_test'): Promise<TestDatabase> {
  if (!PG_URL) throw new Error('HERALD_TEST_PG_URL is not set');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: withDatabase(PG_URL, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(PG_URL, name),
    async drop() {
      const c = new pg.Client({ connectionString: withDatabase(PG_URL, 'postgres') });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Drops every database whose name starts with `prefix` (those a Herald under test created). */
export async function dropDatabases(prefix: string): Promise<void> {
  if (!PG_URL) return;
  const c = new pg.Client({ connectionString: withDatabase(PG_URL, 'postgres') });
  await c.connect();
  try {
    const rows = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${prefix}%`]);
    for (const r of rows.rows) await c.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export function randomDatabaseName(prefix = 'herald_t'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}
