import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import path from 'node:path';
import { runCellStoreContract } from '../cell-store.contract.ts';
import { runOutboxContract } from '../outbox.contract.ts';
import { tempDir } from '../../../test/support/temp.ts';
import { SqliteCellStore } from './sqlite-cell-store.ts';
import { openSqliteDb } from './sqlite-db.ts';
import { SQLITE_STORE_MIGRATIONS } from './sqlite-store-migrations.ts';
import { runMigrations } from '../migrations.ts';

const fixture = async () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'store.db');
  return { open: () => SqliteCellStore.open(file), cleanup: async () => tmp.remove() };
};

describe('cell store contract: sqlite', () => runCellStoreContract(fixture));
describe('outbox contract: sqlite', () => runOutboxContract(fixture));

describe('store migration 3 on an existing SQLite store', () => {
  it('rebuilds installations with push_reachable and keeps every row', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'store.db');
    const db = openSqliteDb(file, { create: true });
    try {
      await runMigrations(db, SQLITE_STORE_MIGRATIONS.slice(0, 2), undefined);
      const insert = db.raw.prepare(
        `INSERT INTO installations (project_id, install_id, profile_id, platform, push_token, web_push, push_enabled, app_version,
           last_seen_at, created_at, updated_at, push_disabled_reason) VALUES (?, ?, 1, ?, ?, ?, ?, NULL, 1, 1, 1, ?)`,
      );
      insert.run('p', 'ios-ok', 'ios', 'ab'.repeat(32), null, 1, null);
      insert.run('p', 'ios-refused', 'ios', 'cd'.repeat(32), null, 1, 'BadDeviceToken');
      insert.run('p', 'web-ok', 'web', null, '{"endpoint":"https://push.example/x"}', 1, null);
      insert.run('p', 'android-off', 'android', 'tok', null, 0, null);
      await runMigrations(db, SQLITE_STORE_MIGRATIONS, undefined);
      const rows = db.raw.prepare('SELECT install_id, push_reachable FROM installations ORDER BY install_id').all();
      assert.deepEqual(rows, [
        { install_id: 'android-off', push_reachable: 0 },
        { install_id: 'ios-ok', push_reachable: 1 },
        { install_id: 'ios-refused', push_reachable: 0 },
        { install_id: 'web-ok', push_reachable: 1 },
      ]);
      db.raw.prepare("UPDATE installations SET push_disabled_reason = 'Unregistered' WHERE install_id = 'web-ok'").run();
      assert.equal((db.raw.prepare("SELECT push_reachable FROM installations WHERE install_id = 'web-ok'").get() as { push_reachable: number }).push_reachable, 0, 'kept by the database on every write');
    } finally {
      await db.close();
      tmp.remove();
    }
  });
});
