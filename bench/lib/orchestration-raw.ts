/**
 * The raw limit of a campaign's materialisation: a plain batched `INSERT … SELECT` of the rows
 * Herald's fan-out writes for a push campaign to everyone reachable (one outbox row per reachable
 * installation: the same columns and values, ids derived from the idempotency key by the same
 * function), one transaction per 5,000 profile ids as Herald commits them, on a copy of the same
 * seeded store, through a connection opened as Herald opens its cell store (WAL, synchronous=FULL,
 * a 32 MB page cache). Nothing else: no cursor, no campaign bookkeeping, no segment compiler.
 * The one hand-tuning: `+p.project_id` keeps SQLite reading the batch's id range by rowid. With the
 * sampled statistics Herald's `PRAGMA optimize` records, the planner otherwise walks the project's
 * (project_id, custom_id) index over every profile for each batch (150–190 ms a batch at 1M
 * profiles instead of ~20 ms).
 */
import { openSqlite } from '../../src/storage/sqlite/sqlite-db.ts';
import { LANES } from '../../src/storage/outbox-port.ts';

export interface RawMaterialise {
  seconds: number;
  rows: number;
  batches: number;
  /** Slowest batch (insert + commit), ms. */
  max_batch_ms: number;
  store_mb_after: number;
}

export const CAMPAIGN_CONTENT = { title: 'Hello {{ profile.custom_id }}' };

/**
 * How message ids are made: `hash` as Herald makes them (a UUID from SHA-256 of the idempotency
 * key: random order in the primary-key index); `sequential` a UUID-shaped string that grows with the
 * profile id (a diagnostic: what the id's order costs, everything else equal).
 */
export type RawIds = 'hash' | 'sequential';

export function rawMaterialise(file: string, projectId: string, spanIds: number, ids: RawIds = 'hash'): RawMaterialise {
  const db = openSqlite(file, { cacheSizeKb: 32 * 1024 });
  try {
    const campaignId = 'cmp_01rawbaseline000000000000';
    const runId = `${campaignId}:${Date.now()}`;
    const now = Date.now();
    // Herald's values for this campaign: its one variant's content per language, the render hints.
    const content = JSON.stringify({ default: CAMPAIGN_CONTENT });
    const render = JSON.stringify({ priority: 'high' });
    const insert = db.prepare(`INSERT INTO messages (id, project_id, send_id, idempotency_key, channel, category, lane, custom_id,
        install_id, platform, recipient, web_push, content, state, reason, error_code, attempts, next_attempt_at, expires_at,
        created_at, updated_at, template_id, campaign_id, automation_id, variant, render)
      SELECT ${ids === 'hash' ? 'herald_message_id(k.ikey)' : "printf('00000000-0000-8000-8000-%012d', k.pid)"}, k.project_id, @run, k.ikey, 'push', 'marketing', @lane, k.custom_id,
        k.install_id, k.platform, k.push_token, k.web_push, @content, 'queued', NULL, NULL, 0, @now, NULL,
        @now, @now, NULL, @campaign, NULL, 'default', @render
      FROM (SELECT @run || '|push|install:' || i.install_id AS ikey, p.id AS pid, p.project_id, p.custom_id, i.install_id, i.platform, i.push_token, i.web_push
            FROM profiles p JOIN installations i ON i.profile_id = p.id AND i.project_id = p.project_id AND i.push_reachable = 1
            WHERE +p.project_id = @project AND p.id > @after AND p.id <= @upTo) k`);
    const maxId = (db.prepare('SELECT MAX(id) AS m FROM profiles').get() as { m: number | null }).m ?? 0;
    const begin = db.prepare('BEGIN IMMEDIATE');
    const commit = db.prepare('COMMIT');
    let rows = 0;
    let batches = 0;
    let maxBatchMs = 0;
    const t0 = performance.now();
    for (let after = 0; after < maxId; after += spanIds) {
      const b0 = performance.now();
      begin.run();
      rows += insert.run({ run: runId, lane: LANES.campaign, content, now, campaign: campaignId, render, project: projectId, after, upTo: Math.min(after + spanIds, maxId) }).changes;
      commit.run();
      batches++;
      maxBatchMs = Math.max(maxBatchMs, performance.now() - b0);
    }
    const seconds = (performance.now() - t0) / 1000;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    return { seconds, rows, batches, max_batch_ms: Math.round(maxBatchMs), store_mb_after: Math.round((pages * pageSize) / 1048576) };
  } finally {
    db.close();
  }
}
