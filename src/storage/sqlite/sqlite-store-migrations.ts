import type { Migration } from '../migrations.ts';

/** The cell store's schema on SQLite. Times are epoch milliseconds; JSON is text. */
export const SQLITE_STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'profiles, installations, events',
    sql: `
      CREATE TABLE ingest_offsets (log_id TEXT PRIMARY KEY, applied_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        project_id TEXT NOT NULL,
        custom_id TEXT NOT NULL,
        email TEXT, email_marketing TEXT, phone TEXT, sms_marketing TEXT,
        language TEXT, region TEXT, timezone TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (project_id, custom_id));
      CREATE TABLE installations (
        project_id TEXT NOT NULL,
        install_id TEXT NOT NULL,
        profile_id INTEGER,
        platform TEXT NOT NULL,
        push_token TEXT,
        web_push TEXT,
        push_enabled INTEGER NOT NULL DEFAULT 0,
        app_version TEXT,
        last_seen_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (project_id, install_id)) WITHOUT ROWID;
      CREATE INDEX installations_profile ON installations (profile_id);
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        time INTEGER NOT NULL,
        client_id TEXT,
        attributes TEXT,
        received_at INTEGER NOT NULL);
      -- Every SQLite index entry ends with the rowid (= id), so (profile_id, time) also orders by id.
      CREATE INDEX events_profile_time ON events (profile_id, time);
      CREATE UNIQUE INDEX events_dedupe ON events (profile_id, client_id) WHERE client_id IS NOT NULL;
      CREATE TABLE event_counts (
        profile_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        count INTEGER NOT NULL,
        first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        PRIMARY KEY (profile_id, name)) WITHOUT ROWID;
      CREATE TABLE catalog (
        project_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL,
        PRIMARY KEY (project_id, kind, name, type)) WITHOUT ROWID;
      CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        log_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        project_id TEXT,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'quarantined',
        created_at INTEGER NOT NULL,
        resolved_at INTEGER);
      CREATE INDEX quarantine_state ON quarantine (state, id);
    `,
  },
];
