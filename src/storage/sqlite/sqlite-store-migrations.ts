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
  {
    version: 2,
    name: 'sends, outbox, message history, suppressions',
    sql: `
      CREATE TABLE sends (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        category TEXT NOT NULL,
        source TEXT NOT NULL,
        summary TEXT NOT NULL,
        created_at INTEGER NOT NULL);
      CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        send_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        category TEXT NOT NULL,
        lane INTEGER NOT NULL,
        custom_id TEXT,
        install_id TEXT,
        platform TEXT,
        recipient TEXT NOT NULL,
        web_push TEXT,
        content TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        error_code TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        lease_owner TEXT,
        lease_until INTEGER,
        provider_kind TEXT,
        provider_message_id TEXT,
        expires_at INTEGER,
        details TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        sent_at INTEGER);
      -- Only live rows are indexed for claiming, so millions of finished messages cost nothing here.
      CREATE INDEX messages_due ON messages (lane, next_attempt_at) WHERE state = 'queued';
      CREATE INDEX messages_leased ON messages (lease_until) WHERE state = 'sending';
      CREATE INDEX messages_send ON messages (send_id, state);
      CREATE INDEX messages_profile ON messages (project_id, custom_id, created_at);
      CREATE INDEX messages_provider_id ON messages (provider_message_id) WHERE provider_message_id IS NOT NULL;
      CREATE TABLE message_events (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        state TEXT NOT NULL,
        code TEXT,
        detail TEXT);
      CREATE INDEX message_events_message ON message_events (message_id, id);
      CREATE TABLE suppressions (
        project_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (project_id, channel, address)) WITHOUT ROWID;
      ALTER TABLE installations ADD COLUMN push_disabled_reason TEXT;
    `,
  },
  {
    version: 3,
    name: 'targeting: indexes, custom audiences, message history',
    sql: `
      -- Targeting (ADR 0008): event conditions scan one event name's time range; "ever" conditions
      -- read the per-profile aggregate; anniversaries group profiles by time zone.
      CREATE INDEX events_name_time ON events (name, time, profile_id);
      CREATE INDEX event_counts_name ON event_counts (name, count, profile_id);
      CREATE INDEX profiles_project_timezone ON profiles (project_id, timezone);
      -- Whether a push reaches an installation (permission, a token or subscription, no provider
      -- refusal), as a column the database keeps with triggers, so reachability is read from an
      -- index alone. (A generated column would be simpler, but SQLite never reads one from an index
      -- alone: measured on 3.53.) Adding the column means rebuilding the table.
      CREATE TABLE installations_v3 (
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
        push_disabled_reason TEXT,
        push_reachable INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project_id, install_id)) WITHOUT ROWID;
      INSERT INTO installations_v3 (project_id, install_id, profile_id, platform, push_token, web_push, push_enabled,
          app_version, last_seen_at, created_at, updated_at, push_disabled_reason, push_reachable)
        SELECT project_id, install_id, profile_id, platform, push_token, web_push, push_enabled,
          app_version, last_seen_at, created_at, updated_at, push_disabled_reason,
          (push_enabled = 1 AND push_disabled_reason IS NULL AND (push_token IS NOT NULL OR web_push IS NOT NULL))
        FROM installations;
      DROP TABLE installations;
      ALTER TABLE installations_v3 RENAME TO installations;
      CREATE INDEX installations_profile ON installations (profile_id);
      CREATE TRIGGER installations_reachable_insert AFTER INSERT ON installations BEGIN
        UPDATE installations SET push_reachable =
          (NEW.push_enabled = 1 AND NEW.push_disabled_reason IS NULL AND (NEW.push_token IS NOT NULL OR NEW.web_push IS NOT NULL))
        WHERE project_id = NEW.project_id AND install_id = NEW.install_id;
      END;
      CREATE TRIGGER installations_reachable_update AFTER UPDATE OF push_enabled, push_disabled_reason, push_token, web_push ON installations BEGIN
        UPDATE installations SET push_reachable =
          (NEW.push_enabled = 1 AND NEW.push_disabled_reason IS NULL AND (NEW.push_token IS NOT NULL OR NEW.web_push IS NOT NULL))
        WHERE project_id = NEW.project_id AND install_id = NEW.install_id;
      END;
      CREATE INDEX installations_reachable ON installations (project_id, push_reachable, platform, profile_id);
      -- Custom audiences: the members of each version; a replace writes a new version and moves
      -- audience_versions.live_version in the same transaction, so readers see all or nothing.
      CREATE TABLE audience_versions (
        audience_id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        live_version INTEGER NOT NULL,
        member_count INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL);
      CREATE TABLE audience_members (
        audience_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (audience_id, version, kind, member)) WITHOUT ROWID;
      CREATE INDEX audience_members_member ON audience_members (kind, member);
      -- Message history for retargeting: where a message came from and what the recipient did.
      ALTER TABLE messages ADD COLUMN template_id TEXT;
      ALTER TABLE messages ADD COLUMN campaign_id TEXT;
      ALTER TABLE messages ADD COLUMN automation_id TEXT;
      ALTER TABLE messages ADD COLUMN opened_at INTEGER;
      ALTER TABLE messages ADD COLUMN clicked_at INTEGER;
      CREATE INDEX messages_template ON messages (template_id, project_id) WHERE template_id IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'orchestration: campaigns, runs, history, journeys',
    sql: `
      -- Campaigns and automations (recurring and journeys): the definition, its status, and when
      -- the scheduler must look at it next. Runs (one per campaign, one per recurring occurrence)
      -- hold the fan-out cursor, moved in the same transaction as the messages it wrote (I4).
      CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        definition TEXT NOT NULL,
        version INTEGER NOT NULL,
        next_run_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (project_id, name));
      CREATE INDEX campaigns_due ON campaigns (next_run_at) WHERE next_run_at IS NOT NULL;
      CREATE TABLE campaign_runs (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        occurrence_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        plan TEXT NOT NULL,
        cursor TEXT NOT NULL,
        targeted INTEGER NOT NULL DEFAULT 0,
        paused_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        completed_at INTEGER,
        UNIQUE (campaign_id, occurrence_at));
      CREATE INDEX campaign_runs_live ON campaign_runs (status) WHERE status IN ('materializing', 'sending');
      CREATE TABLE campaign_history (
        id INTEGER PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        run_id TEXT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL);
      CREATE INDEX campaign_history_campaign ON campaign_history (campaign_id, id);
      -- A project's messaging settings: its default time zone, frequency caps and quiet hours.
      CREATE TABLE project_settings (project_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at INTEGER NOT NULL);
      -- Which A/B variant (or the control group) a message belongs to; content still to render at
      -- delivery with the recipient's profile (campaign messages carry their template, not its output).
      ALTER TABLE messages ADD COLUMN variant TEXT;
      ALTER TABLE messages ADD COLUMN render TEXT;
      CREATE INDEX messages_campaign ON messages (campaign_id, send_id) WHERE campaign_id IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'orchestration: journeys (versions, enrollments and their timers, step counts), trigger cursor',
    sql: `
      -- A journey's definitions by version: users inside keep the version they entered with.
      CREATE TABLE journey_versions (
        journey_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (journey_id, version));
      -- One user's way through one journey: where they are, and the durable timer that moves them on.
      CREATE TABLE journey_enrollments (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        journey_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        custom_id TEXT NOT NULL,
        entry_key TEXT NOT NULL,
        step_id TEXT,
        state TEXT NOT NULL,
        due_at INTEGER,
        wait_since INTEGER,
        data TEXT NOT NULL,
        entered_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (journey_id, custom_id, entry_key));
      CREATE INDEX journey_enrollments_due ON journey_enrollments (due_at) WHERE state IN ('waiting', 'waiting_event');
      CREATE INDEX journey_enrollments_profile ON journey_enrollments (project_id, custom_id, state);
      CREATE TABLE journey_step_counts (
        journey_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (journey_id, step_id, outcome));
      -- Who was in a segment-entry journey's segment at its last evaluation (entering = newly in it).
      CREATE TABLE journey_segment_members (
        journey_id TEXT NOT NULL,
        profile_id INTEGER NOT NULL,
        PRIMARY KEY (journey_id, profile_id));
      -- How far the orchestrator has read a stream (the applied events, for triggers).
      CREATE TABLE orchestrator_cursors (name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    `,
  },
];
