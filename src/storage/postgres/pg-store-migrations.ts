import type { Migration } from '../migrations.ts';

/** The cell store's schema on PostgreSQL. Times are epoch milliseconds (BIGINT); JSON is jsonb. */
export const PG_STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'profiles, installations, events',
    sql: `
      CREATE TABLE ingest_offsets (log_id TEXT PRIMARY KEY, applied_seq BIGINT NOT NULL, updated_at BIGINT NOT NULL);
      CREATE TABLE profiles (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project_id TEXT NOT NULL,
        custom_id TEXT NOT NULL,
        email TEXT, email_marketing TEXT, phone TEXT, sms_marketing TEXT,
        language TEXT, region TEXT, timezone TEXT,
        attributes JSONB NOT NULL DEFAULT '{}',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (project_id, custom_id));
      CREATE TABLE installations (
        project_id TEXT NOT NULL,
        install_id TEXT NOT NULL,
        profile_id BIGINT,
        platform TEXT NOT NULL,
        push_token TEXT,
        web_push JSONB,
        push_enabled BOOLEAN NOT NULL DEFAULT false,
        app_version TEXT,
        last_seen_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, install_id));
      CREATE INDEX installations_profile ON installations (profile_id);
      CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        profile_id BIGINT NOT NULL,
        name TEXT NOT NULL,
        time BIGINT NOT NULL,
        client_id TEXT,
        attributes JSONB,
        received_at BIGINT NOT NULL);
      CREATE INDEX events_profile_time ON events (profile_id, time DESC, id DESC);
      CREATE UNIQUE INDEX events_dedupe ON events (profile_id, client_id) WHERE client_id IS NOT NULL;
      CREATE TABLE event_counts (
        profile_id BIGINT NOT NULL,
        name TEXT NOT NULL,
        count BIGINT NOT NULL,
        first_at BIGINT NOT NULL,
        last_at BIGINT NOT NULL,
        PRIMARY KEY (profile_id, name));
      CREATE TABLE catalog (
        project_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        first_seen_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, kind, name, type));
      CREATE TABLE quarantine (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        log_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        project_id TEXT,
        payload TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'quarantined',
        created_at BIGINT NOT NULL,
        resolved_at BIGINT);
      CREATE INDEX quarantine_state ON quarantine (state, id);
    `,
  },
];
