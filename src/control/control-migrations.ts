import type { Migration } from '../storage/migrations.ts';

/**
 * The control plane's schema. It is small and portable, so one list serves SQLite and PostgreSQL.
 * Secrets are never stored: API keys only as SHA-256 hashes (they are 240-bit random strings, so
 * a fast hash is enough) plus a short display prefix.
 */
export const CONTROL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'cells, projects, keys',
    sql: `
      CREATE TABLE cells (
        id TEXT PRIMARY KEY,
        store_url TEXT NOT NULL,
        log_url TEXT NOT NULL,
        protected INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL);
      CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        cell_id TEXT NOT NULL REFERENCES cells (id),
        rate_limit_per_second INTEGER,
        created_at BIGINT NOT NULL,
        deleted_at BIGINT);
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects (id),
        kind TEXT NOT NULL CHECK (kind IN ('secret', 'public')),
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        name TEXT,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT);
      CREATE INDEX api_keys_project ON api_keys (project_id);
      -- Bumped by every change, so every process can tell cheaply that its cache is stale.
      CREATE TABLE control_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
      INSERT INTO control_version (id, version) VALUES (1, 0);
    `,
  },
  {
    version: 2,
    name: 'providers and templates',
    sql: `
      -- One configured provider of each kind per project. Credentials are sealed (AES-256-GCM);
      -- the row's project and kind are bound into the seal, so a sealed value cannot be moved.
      CREATE TABLE providers (
        project_id TEXT NOT NULL REFERENCES projects (id),
        kind TEXT NOT NULL,
        credentials TEXT NOT NULL,
        sandbox INTEGER NOT NULL DEFAULT 0,
        disabled_reason TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, kind));
      CREATE TABLE templates (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects (id),
        name TEXT NOT NULL,
        channel TEXT NOT NULL,
        variants TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (project_id, name));
    `,
  },
  {
    version: 3,
    name: 'provider flow-control limits',
    sql: `
      -- A project's own rate and concurrency for a provider (JSON {ratePerSecond?, maxConcurrency?});
      -- NULL keeps the provider's documented defaults.
      ALTER TABLE providers ADD COLUMN limits TEXT;
    `,
  },
  {
    version: 4,
    name: 'saved segments',
    sql: `
      -- A saved targeting expression (the JSON tree of src/targeting/segment-model.ts).
      CREATE TABLE segments (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects (id),
        name TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (project_id, name));
    `,
  },
  {
    version: 5,
    name: 'custom audiences and their uploads',
    sql: `
      -- A custom audience's definition; its members live in the cell store (audience_members),
      -- written through the cell's ingest log.
      CREATE TABLE audiences (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects (id),
        name TEXT NOT NULL,
        description TEXT,
        -- The last staging version handed out: every upload and replace writes under a fresh one.
        last_version INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (project_id, name));
      -- An upload (CSV or NDJSON) and how far it got; kept so its state survives restarts.
      CREATE TABLE audience_imports (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects (id),
        audience_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        format TEXT NOT NULL,
        state TEXT NOT NULL,
        phase TEXT NOT NULL,
        version INTEGER NOT NULL,
        rows_read BIGINT NOT NULL DEFAULT 0,
        rows_accepted BIGINT NOT NULL DEFAULT 0,
        rows_logged BIGINT NOT NULL DEFAULT 0,
        error_count BIGINT NOT NULL DEFAULT 0,
        errors TEXT NOT NULL DEFAULT '[]',
        reason TEXT,
        ingest_id TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL);
      CREATE INDEX audience_imports_audience ON audience_imports (audience_id, created_at);
      CREATE INDEX audience_imports_state ON audience_imports (state);
    `,
  },
];
