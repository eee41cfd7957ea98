import type { SqlDb } from './sql.ts';

/** A numbered, forward-only migration. Versions only ever grow; a shipped migration never changes. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export interface MigrationResult {
  applied: Migration[];
  currentVersion: number;
}

/**
 * Applies the migrations newer than the database's version, each in its own transaction together
 * with its row in `schema_migrations`. `lock` serialises concurrent migrators (an advisory lock on
 * PostgreSQL; SQLite's write lock already does).
 */
export async function runMigrations(
  db: SqlDb,
  migrations: readonly Migration[],
  lockStatement: string | undefined,
): Promise<MigrationResult> {
  assertOrdered(migrations);
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
  );
  const applied: Migration[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      if (lockStatement) await tx.query(lockStatement);
      const rows = await tx.query('SELECT version FROM schema_migrations WHERE version = ?', [migration.version]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      return true;
    });
    if (done) applied.push(migration);
  }
  const last = migrations.at(-1);
  return { applied, currentVersion: last ? last.version : 0 };
}

function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}
