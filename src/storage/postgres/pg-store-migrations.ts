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
        summary JSONB NOT NULL,
        created_at BIGINT NOT NULL);
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
        web_push JSONB,
        content JSONB NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        error_code TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        lease_owner TEXT,
        lease_until BIGINT,
        provider_kind TEXT,
        provider_message_id TEXT,
        expires_at BIGINT,
        details JSONB,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        sent_at BIGINT);
      CREATE INDEX messages_due ON messages (lane, next_attempt_at) WHERE state = 'queued';
      CREATE INDEX messages_leased ON messages (lease_until) WHERE state = 'sending';
      CREATE INDEX messages_send ON messages (send_id, state);
      CREATE INDEX messages_profile ON messages (project_id, custom_id, created_at);
      CREATE INDEX messages_provider_id ON messages (provider_message_id) WHERE provider_message_id IS NOT NULL;
      CREATE TABLE message_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        state TEXT NOT NULL,
        code TEXT,
        detail TEXT);
      CREATE INDEX message_events_message ON message_events (message_id, id);
      CREATE TABLE suppressions (
        project_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, channel, address));
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
      -- refusal), kept by PostgreSQL itself, so reachability is read from an index alone.
      ALTER TABLE installations ADD COLUMN push_reachable BOOLEAN GENERATED ALWAYS AS
        (push_enabled AND push_disabled_reason IS NULL AND (push_token IS NOT NULL OR web_push IS NOT NULL)) STORED;
      CREATE INDEX installations_reachable ON installations (project_id, push_reachable, platform, profile_id);
      -- Custom audiences: the members of each version; a replace writes a new version and moves
      -- audience_versions.live_version in the same transaction, so readers see all or nothing.
      CREATE TABLE audience_versions (
        audience_id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        live_version INTEGER NOT NULL,
        member_count INTEGER NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL);
      CREATE TABLE audience_members (
        audience_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (audience_id, version, kind, member));
      CREATE INDEX audience_members_member ON audience_members (kind, member);
      -- Message history for retargeting: where a message came from and what the recipient did.
      ALTER TABLE messages ADD COLUMN template_id TEXT;
      ALTER TABLE messages ADD COLUMN campaign_id TEXT;
      ALTER TABLE messages ADD COLUMN automation_id TEXT;
      ALTER TABLE messages ADD COLUMN opened_at BIGINT;
      ALTER TABLE messages ADD COLUMN clicked_at BIGINT;
      CREATE INDEX messages_template ON messages (template_id, project_id) WHERE template_id IS NOT NULL;
      -- A date attribute as epoch ms, exactly as src/targeting/instant.ts parseInstant reads it
      -- (NULL when the text is not a real calendar date or instant).
      CREATE FUNCTION herald_instant(v text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      DECLARE
        m text[];
        y int; mo int; d int; h int := 0; mi int := 0; s int := 0; ms int := 0; off int := 0; dim int;
      BEGIN
        IF length(v) > 40 THEN RETURN NULL; END IF;
        m := regexp_match(v, '^(\\d{4})-(\\d{2})-(\\d{2})(?:T(\\d{2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,9}))?)?(?:Z|([+-])(\\d{2}):?(\\d{2})))?$');
        IF m IS NULL THEN RETURN NULL; END IF;
        y := m[1]::int; mo := m[2]::int; d := m[3]::int;
        IF y < 1 OR mo < 1 OR mo > 12 OR d < 1 THEN RETURN NULL; END IF;
        dim := CASE WHEN mo = 2 THEN (CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29 ELSE 28 END)
                    WHEN mo IN (4, 6, 9, 11) THEN 30 ELSE 31 END;
        IF d > dim THEN RETURN NULL; END IF;
        IF m[4] IS NOT NULL THEN h := m[4]::int; mi := m[5]::int; END IF;
        IF m[6] IS NOT NULL THEN s := m[6]::int; END IF;
        IF m[7] IS NOT NULL THEN ms := rpad(left(m[7], 3), 3, '0')::int; END IF;
        IF h > 23 OR mi > 59 OR s > 59 THEN RETURN NULL; END IF;
        IF m[8] IS NOT NULL THEN
          IF m[9]::int > 23 OR m[10]::int > 59 THEN RETURN NULL; END IF;
          off := (m[9]::int * 60 + m[10]::int) * (CASE WHEN m[8] = '-' THEN -1 ELSE 1 END);
        END IF;
        RETURN (make_date(y, mo, d) - DATE '1970-01-01')::bigint * 86400000
          + ((h * 60 + mi) * 60 + s)::bigint * 1000 + ms - off::bigint * 60000;
      END
      $fn$;
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
        next_run_at BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (project_id, name));
      CREATE INDEX campaigns_due ON campaigns (next_run_at) WHERE next_run_at IS NOT NULL;
      CREATE TABLE campaign_runs (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        occurrence_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        plan TEXT NOT NULL,
        cursor TEXT NOT NULL,
        targeted BIGINT NOT NULL DEFAULT 0,
        paused_at BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        completed_at BIGINT,
        UNIQUE (campaign_id, occurrence_at));
      CREATE INDEX campaign_runs_live ON campaign_runs (status) WHERE status IN ('materializing', 'sending');
      CREATE TABLE campaign_history (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        run_id TEXT,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL);
      CREATE INDEX campaign_history_campaign ON campaign_history (campaign_id, id);
      -- A project's messaging settings: its default time zone, frequency caps and quiet hours.
      CREATE TABLE project_settings (project_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at BIGINT NOT NULL);
      -- Which A/B variant (or the control group) a message belongs to; content still to render at
      -- delivery with the recipient's profile (campaign messages carry their template, not its output).
      ALTER TABLE messages ADD COLUMN variant TEXT;
      ALTER TABLE messages ADD COLUMN render TEXT;
      CREATE INDEX messages_campaign ON messages (campaign_id, send_id) WHERE campaign_id IS NOT NULL;
      -- The message id of an idempotency key, exactly as src/delivery/message-id.ts computes it.
      CREATE FUNCTION herald_message_id(k text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
        SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-8' || substr(h, 14, 3) || '-'
          || to_hex((('x' || substr(h, 17, 1))::bit(4)::int & 3) | 8) || substr(h, 18, 3) || '-' || substr(h, 21, 12)
        FROM (SELECT encode(sha256(convert_to(k, 'UTF8')), 'hex') AS h) s
      $fn$;
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
        created_at BIGINT NOT NULL,
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
        due_at BIGINT,
        wait_since BIGINT,
        data TEXT NOT NULL,
        entered_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (journey_id, custom_id, entry_key));
      CREATE INDEX journey_enrollments_due ON journey_enrollments (due_at) WHERE state IN ('waiting', 'waiting_event');
      CREATE INDEX journey_enrollments_profile ON journey_enrollments (project_id, custom_id, state);
      CREATE TABLE journey_step_counts (
        journey_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (journey_id, step_id, outcome));
      -- Who was in a segment-entry journey's segment at its last evaluation (entering = newly in it).
      CREATE TABLE journey_segment_members (
        journey_id TEXT NOT NULL,
        profile_id BIGINT NOT NULL,
        PRIMARY KEY (journey_id, profile_id));
      -- How far the orchestrator has read a stream (the applied events, for triggers).
      CREATE TABLE orchestrator_cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at BIGINT NOT NULL);
    `,
  },
];
