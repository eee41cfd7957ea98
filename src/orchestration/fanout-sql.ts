import type { Category, Channel } from '../delivery/delivery-model.ts';
import type { Platform } from '../profiles/profile-model.ts';
import type { TargetingDialect } from '../targeting/sql-dialects.ts';
import { type Fragment, join, list, raw, sql } from '../targeting/sql-fragment.ts';
import { CONTROL, variantBounds } from './campaign-model.ts';

/**
 * The campaign fan-out as one `INSERT … SELECT` per batch of profile ids (issue 5, part 2): every
 * recipient of the batch becomes one outbox row — queued, or settled at once with a reason
 * (suppressed, capped, control group, quiet hours, late start) — so a campaign's counts always add
 * up to its targeted total. Ids derive from the idempotency key in SQL (`herald_message_id`), and
 * the key (run, channel, recipient) is unique: a batch replayed after a crash inserts nothing twice.
 */

/** Why a row was settled at creation, and the sentence a person reads. */
export const FANOUT_REASONS: Record<string, { state: 'suppressed' | 'capped' | 'cancelled'; reason: string }> = {
  NO_PUSH_INSTALLATION: { state: 'suppressed', reason: 'the profile has no installation that can receive push (none registered, permission off, or token refused)' },
  NO_EMAIL: { state: 'suppressed', reason: 'the profile has no email address' },
  NO_PHONE: { state: 'suppressed', reason: 'the profile has no phone number' },
  NOT_SUBSCRIBED: { state: 'suppressed', reason: 'the profile is not subscribed to marketing on this channel' },
  ADDRESS_SUPPRESSED: { state: 'suppressed', reason: 'the address is suppressed (bounced, complained or unsubscribed)' },
  CONTROL_GROUP: { state: 'cancelled', reason: 'in the control group: recorded, never sent' },
  FREQUENCY_CAP: { state: 'capped', reason: "the project's frequency cap for this channel was reached for this user" },
  COOLDOWN: { state: 'capped', reason: "the user got this automation's message less than its cooldown ago" },
  QUIET_HOURS: { state: 'cancelled', reason: "scheduled inside the user's quiet hours and the campaign drops such messages" },
  START_LATE: { state: 'cancelled', reason: 'the campaign started later than its late-start limit and cancels late sends' },
};

/** What one zone's recipients get: when their message is due, or why none is sent. */
export interface ZoneOutcome {
  dueAt: number;
  /** QUIET_HOURS or START_LATE, when the zone's messages are settled instead of sent. */
  verdict: 'QUIET_HOURS' | 'START_LATE' | null;
}

export interface FanOutBatch {
  dialect: TargetingDialect;
  runId: string;
  /** What the idempotency key starts with (default: the run id); a journey step's is the enrollment and step. */
  keyPrefix?: string;
  campaignId: string;
  automationId: string | null;
  projectId: string;
  channel: Channel;
  category: Category;
  lane: number;
  /** The compiled segment (and wave restriction) over `profiles p`. */
  where: Fragment;
  /** The batch's profile id range (after, up to]; null: no range (a journey's single user). */
  afterId: number | null;
  upToId: number | null;
  /** Push to everyone reachable: only profiles with a reachable installation (an inner join, no segment needed). */
  reachableOnly?: boolean;
  platforms: Platform[] | null;
  variants: { name: string; weight: number; content: string; templateId: string | null }[];
  controlPercent: number;
  /** Outcome per zone name; profiles whose zone is absent or unknown get `otherZones`. */
  zones: Map<string, ZoneOutcome>;
  otherZones: ZoneOutcome;
  /** Messages per minute, and how many this wave already scheduled (the pacing offset). */
  pacing: { perMinute: number; offset: number } | null;
  expiresAfterMs: number | null;
  caps: { max: number; windowMs: number }[];
  /** A recurring automation's per-user cooldown: no message if one of this source's was sent or queued within it. */
  cooldown?: { windowMs: number } | null;
  /** The JSON the renderer reads at delivery (push priority…). */
  render: string;
  nowMs: number;
}

const COLUMNS = `id, project_id, send_id, idempotency_key, channel, category, lane, custom_id, install_id, platform, recipient,
  web_push, content, state, reason, error_code, attempts, next_attempt_at, expires_at, created_at, updated_at, template_id,
  campaign_id, automation_id, variant, render`;

/** Parameters typed where PostgreSQL cannot infer them (select lists, CASE arms, concatenation). */
const int = (v: number | null): Fragment => (v === null ? sql`CAST(NULL AS BIGINT)` : sql`CAST(${v} AS BIGINT)`);
const text = (v: string | null): Fragment => (v === null ? sql`CAST(NULL AS TEXT)` : sql`CAST(${v} AS TEXT)`);

/** Groups zones by outcome and writes one CASE arm per distinct outcome (IN lists, not a branch per zone). */
function zoneCase<T extends number | string | null>(b: FanOutBatch, column: string, pick: (o: ZoneOutcome) => T, typed: (v: T) => Fragment): Fragment {
  const groups = new Map<string, { value: T; zones: string[] }>();
  const other = pick(b.otherZones);
  for (const [zone, outcome] of b.zones) {
    const value = pick(outcome);
    if (value === other) continue;
    const key = JSON.stringify(value);
    const g = groups.get(key) ?? { value, zones: [] };
    g.zones.push(zone);
    groups.set(key, g);
  }
  if (groups.size === 0) return typed(other);
  const arms = [...groups.values()].map((g) => sql`WHEN ${raw(column)} IN ${list(g.zones)} THEN ${typed(g.value)}`);
  return sql`(CASE ${join(arms, ' ')} ELSE ${typed(other)} END)`;
}

/** The arm of each profile: control first, then variants by cumulative weight (see `assignVariant`). */
function variantCase(b: FanOutBatch): Fragment {
  const bucket = b.dialect.bucket(b.campaignId);
  const arms: Fragment[] = [];
  if (b.controlPercent > 0) arms.push(sql`WHEN ${bucket} < ${b.controlPercent} THEN ${text(CONTROL)}`);
  const bounds = variantBounds(b.variants, b.controlPercent);
  bounds.slice(0, -1).forEach(([bound, name]) => arms.push(sql`WHEN ${bucket} < ${bound} THEN ${text(name)}`));
  const last = text(bounds[bounds.length - 1]![1]);
  return arms.length === 0 ? last : sql`(CASE ${join(arms, ' ')} ELSE ${last} END)`;
}

/** A per-variant value over the `v` row: one value, or a CASE on the row's variant (control rows, never sent, get the first's). */
function byVariant(b: FanOutBatch, pick: (v: FanOutBatch['variants'][number]) => Fragment): Fragment {
  const [first, ...rest] = b.variants;
  if (rest.length === 0) return pick(first!);
  return sql`(CASE v.variant ${join(rest.map((v) => sql`WHEN ${v.name} THEN ${pick(v)}`), ' ')} ELSE ${pick(first!)} END)`;
}

/** The recipient columns per channel, including the code of a profile the channel cannot reach. */
function channelParts(b: FanOutBatch): { from: Fragment; columns: Fragment } {
  const pg = b.dialect.name === 'postgres';
  switch (b.channel) {
    case 'push': {
      const platforms = b.platforms ? sql` AND i.platform IN ${list(b.platforms)}` : sql``;
      const endpoint = pg ? raw("i.web_push ->> 'endpoint'") : raw("json_extract(i.web_push, '$.endpoint')");
      return {
        from: sql`profiles p ${raw(b.reachableOnly ? 'JOIN' : 'LEFT JOIN')} installations i ON i.profile_id = p.id AND i.project_id = p.project_id
          AND i.push_reachable = ${raw(b.dialect.trueValue)}${platforms}`,
        columns: sql`i.install_id AS install_id, i.platform AS platform, i.web_push AS web_push,
          COALESCE(CASE WHEN i.platform = 'web' THEN ${endpoint} ELSE i.push_token END, p.custom_id) AS recipient,
          CASE WHEN i.install_id IS NULL THEN 'profile:' || p.custom_id ELSE 'install:' || i.install_id END AS rkey,
          CASE WHEN i.install_id IS NULL THEN 'NO_PUSH_INSTALLATION' END AS unreachable`,
      };
    }
    case 'email':
    case 'sms': {
      const address = raw(b.channel === 'email' ? 'p.email' : 'p.phone');
      const consent = raw(b.channel === 'email' ? 'p.email_marketing' : 'p.sms_marketing');
      const missing = b.channel === 'email' ? 'NO_EMAIL' : 'NO_PHONE';
      const consentArm = b.category === 'marketing' ? sql`WHEN COALESCE(${consent}, '') <> 'subscribed' THEN 'NOT_SUBSCRIBED'` : sql``;
      return {
        from: sql`profiles p`,
        columns: sql`CAST(NULL AS TEXT) AS install_id, CAST(NULL AS TEXT) AS platform, ${raw(pg ? 'CAST(NULL AS jsonb)' : 'NULL')} AS web_push,
          COALESCE(${address}, p.custom_id) AS recipient,
          CASE WHEN ${address} IS NULL THEN 'profile:' || p.custom_id ELSE ${text(b.channel)} || ':' || ${address} END AS rkey,
          CASE WHEN ${address} IS NULL THEN ${text(missing)} ${consentArm}
               WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.project_id = p.project_id AND s.channel = ${text(b.channel)} AND s.address = ${address})
               THEN 'ADDRESS_SUPPRESSED' END AS unreachable`,
      };
    }
    case 'webhook':
      return {
        from: sql`profiles p`,
        columns: sql`CAST(NULL AS TEXT) AS install_id, CAST(NULL AS TEXT) AS platform, ${raw(pg ? 'CAST(NULL AS jsonb)' : 'NULL')} AS web_push,
          p.custom_id AS recipient, 'profile:' || p.custom_id AS rkey, CAST(NULL AS TEXT) AS unreachable`,
      };
  }
}

/** The batch's INSERT … SELECT; its row count is how many recipients the batch targeted. */
export function fanOutInsert(b: FanOutBatch): Fragment {
  const pg = b.dialect.name === 'postgres';
  const json = (v: string | null): Fragment => (v === null ? raw('NULL') : pg ? sql`CAST(${v} AS jsonb)` : text(v));
  const ch = channelParts(b);
  const due = zoneCase(b, 'r.timezone', (o) => o.dueAt, int);
  const verdict = zoneCase(b, 'p.timezone', (o) => o.verdict, text);
  const paced = b.pacing ? sql`(${due} + ((${int(b.pacing.offset)} + r.rn - 1) * 60000) / ${int(b.pacing.perMinute)})` : due;
  const capped = b.caps.map(
    (c) => sql`WHEN (SELECT COUNT(DISTINCT m.send_id) FROM messages m WHERE m.project_id = r.project_id AND m.custom_id = r.custom_id
      AND m.channel = ${text(b.channel)} AND m.category = 'marketing' AND m.state IN ('queued', 'sending', 'sent')
      AND m.created_at > ${int(b.nowMs - c.windowMs)}) >= ${int(c.max)} THEN 'FREQUENCY_CAP'`,
  );
  const cooldown = b.cooldown
    ? sql`WHEN EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = ${text(b.campaignId)} AND m.project_id = r.project_id AND m.custom_id = r.custom_id
        AND m.state IN ('queued', 'sending', 'sent') AND m.created_at > ${int(b.nowMs - b.cooldown.windowMs)}) THEN 'COOLDOWN'`
    : sql``;
  const code = sql`CASE WHEN r.unreachable IS NOT NULL THEN r.unreachable
      WHEN r.variant = ${text(CONTROL)} THEN 'CONTROL_GROUP'
      WHEN r.verdict IS NOT NULL THEN r.verdict
      ${cooldown}
      ${join(b.category === 'marketing' ? capped : [], ' ')}
      ELSE CAST(NULL AS TEXT) END`;
  const states = [...new Set(Object.values(FANOUT_REASONS).map((r) => r.state))];
  const stateOf = sql`CASE WHEN v.code IS NULL THEN 'queued' ${join(
    states.map((state) => sql`WHEN v.code IN ${list(Object.entries(FANOUT_REASONS).filter(([, r]) => r.state === state).map(([c]) => c))} THEN ${text(state)}`),
    ' ',
  )} END`;
  const reasonOf = sql`CASE v.code ${join(Object.entries(FANOUT_REASONS).map(([c, r]) => sql`WHEN ${text(c)} THEN ${text(r.reason)}`), ' ')} ELSE CAST(NULL AS TEXT) END`;
  const order = raw(b.channel === 'push' ? 'p.id, i.install_id' : 'p.id');
  // SQLite: a unary + keeps the planner on the rowid range (its sampled statistics may otherwise
  // steer a batch onto the (project_id, custom_id) index and walk the whole project).
  const project = raw(pg ? 'p.project_id' : '+p.project_id');
  const range = b.afterId === null || b.upToId === null ? sql`` : sql` AND p.id > ${int(b.afterId)} AND p.id <= ${int(b.upToId)}`;
  const inner = sql`SELECT p.id AS pid, p.project_id AS project_id, p.custom_id AS custom_id, p.timezone AS timezone, ${ch.columns},
      ${variantCase(b)} AS variant, ${verdict} AS verdict, ROW_NUMBER() OVER (ORDER BY ${order}) AS rn
    FROM ${ch.from}
    WHERE ${project} = ${text(b.projectId)}${range} AND ${b.where}`;
  const middle = sql`SELECT r.*, ${text(b.keyPrefix ?? b.runId)} || '|' || ${text(b.channel)} || '|' || r.rkey AS ikey, ${paced} AS due_at, ${code} AS code FROM (${inner}) r`;
  const expires = b.expiresAfterMs === null ? int(null) : sql`v.due_at + ${int(b.expiresAfterMs)}`;
  return sql`INSERT INTO messages (${raw(COLUMNS)})
    SELECT herald_message_id(v.ikey), v.project_id, ${text(b.runId)}, v.ikey, ${text(b.channel)}, ${text(b.category)}, ${int(b.lane)},
      v.custom_id, v.install_id, v.platform, v.recipient, v.web_push, ${byVariant(b, (v) => json(v.content))},
      ${stateOf}, ${reasonOf}, v.code, 0, v.due_at, ${expires}, ${int(b.nowMs)}, ${int(b.nowMs)},
      ${byVariant(b, (v) => text(v.templateId))}, ${text(b.campaignId)}, ${text(b.automationId)}, v.variant, ${text(b.render)}
    FROM (${middle}) v WHERE TRUE
    ON CONFLICT DO NOTHING`;
}
