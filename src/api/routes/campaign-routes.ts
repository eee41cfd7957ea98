import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { timeOrderedId } from '../../core/ids.ts';
import { isUniqueViolation, type ProjectRecord } from '../../control/control-store.ts';
import { checkContent } from '../../delivery/send-validation.ts';
import type { TemplateEngine } from '../../delivery/templates/template-engine.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { CampaignDefinition, CampaignRecord } from '../../orchestration/campaign-model.ts';
import { CampaignActions } from '../../orchestration/campaign-runner.ts';
import { checkCampaign, checkSendTime, checkSettings, type CampaignContext } from '../../orchestration/campaign-validation.ts';
import type { MessagingSettings } from '../../orchestration/messaging-settings.ts';
import { FANOUT_REASONS } from '../../orchestration/fanout-sql.ts';
import type { CellStore } from '../../storage/cell-store.ts';
import type { CountRow } from '../../storage/sql-campaigns.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { segmentContextOf } from '../segment-context.ts';

export const security = [{ bearerAuth: [] as string[] }];
export const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };
export const Id = Type.Object({ id: Type.String({ maxLength: 200 }) });
const Loose = (description: string) => Type.Optional(Type.Unknown({ description }));
const CampaignBody = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'Unique in the project.' })),
    channel: Loose('push, email, sms or webhook.'),
    category: Loose('"marketing" (default: consent, caps and quiet hours apply) or "transactional".'),
    target: Loose('{"segment": <tree or saved segment name>, "audiences": ["name", …]}; absent: everyone reachable on the channel.'),
    platforms: Loose('Push only: ["ios", "android", "web"].'),
    send_at: Loose('"now" (default), an ISO 8601 instant, or {"local": "YYYY-MM-DDTHH:MM"} for that time in each recipient’s zone.'),
    rate_per_minute: Loose('Messages per minute, spread evenly; absent: as fast as providers take them.'),
    template: Loose('A saved template (id or name), for a campaign with one variant.'),
    content: Loose('Inline content ({"default": {…}, "fr": {…}} or one content), for a campaign with one variant.'),
    variants: Loose('A/B test: [{"name": "A", "weight": 50, "template" | "content"}, …], weights summing to 100.'),
    control_percent: Loose('Percent of recipients held back (recorded, never sent), 0–50.'),
    freshness: Loose('{"expires_after": "6h", "late_start_after": "1h", "on_late_start": "send" | "cancel"}.'),
    quiet_hours: Loose('"defer" (default), "drop" or "ignore" the project’s quiet hours.'),
    priority: Loose('Push only: "high" (default) or "normal".'),
  },
  { description: 'A campaign. Every field is checked by Herald, with the path of each problem in a 400.' },
);
const Counts = Type.Record(Type.String(), Type.Integer());
export const CampaignView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  status: Type.String({ description: 'draft, scheduled, running, paused, completed or cancelled' }),
  version: Type.Integer(),
  definition: Type.Unknown(),
  next_run_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  history: Type.Optional(Type.Array(Type.Object({ at: Type.String(), kind: Type.String(), detail: Type.String(), run_id: Type.Union([Type.String(), Type.Null()]) }))),
});
export const ReportView = Type.Object({
  campaign_id: Type.String(),
  status: Type.String(),
  targeted: Type.Integer(),
  counts: Counts,
  reconciled: Type.Boolean({ description: 'targeted = sent + failed + expired + suppressed + capped + cancelled + control (+ queued and sending while it runs)' }),
  variants: Type.Record(Type.String(), Counts),
  reasons: Type.Array(Type.Object({ state: Type.String(), code: Type.String(), count: Type.Integer(), reason: Type.Union([Type.String(), Type.Null()]) })),
  runs: Type.Array(Type.Object({ id: Type.String(), occurrence_at: Type.String(), status: Type.String(), targeted: Type.Integer(), counts: Counts })),
});
const SettingsBody = Type.Object(
  {
    timezone: Loose('The zone for profiles that have none (IANA name, default UTC).'),
    frequency_caps: Loose('[{"channel": "push", "max": 2, "window": "1d"}]: marketing messages per user in any rolling window.'),
    quiet_hours: Loose('{"start": "21:00", "end": "08:00"} in each user’s zone, or null.'),
  },
  { description: 'Messaging settings: transactional messages bypass caps and quiet hours.' },
);

/** What campaigns and automations are checked against: segments, audiences, templates, content rules. */
export async function campaignContextOf(deps: ApiDeps, project: ProjectRecord, engine: TemplateEngine): Promise<CampaignContext> {
  const { ctx } = await segmentContextOf(deps, project);
  const templates = new Map<string, string>();
  for (const t of await deps.control.config.listTemplates(project.id)) {
    templates.set(t.id, t.channel);
    templates.set(t.name, t.channel);
  }
  return {
    segment: ctx,
    templateChannel: (ref) => templates.get(ref),
    checkContent: (channel, content, path, problems) => checkContent(channel, content, path, engine, problems),
  };
}

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const REPORT_STATES = ['queued', 'sending', 'sent', 'failed', 'expired', 'suppressed', 'capped', 'cancelled', 'control'] as const;

/** The definition as it is written in a request (snake_case), so a GET can be edited and PUT back. */
export function definitionView(d: CampaignDefinition): Record<string, unknown> {
  return {
    channel: d.channel,
    category: d.category,
    target: { ...(d.target.segment ? { segment: d.target.segment } : {}), ...(d.target.audiences.length ? { audiences: d.target.audiences } : {}) },
    ...(d.platforms ? { platforms: d.platforms } : {}),
    send_at: d.sendTime.type === 'now' ? 'now' : d.sendTime.type === 'at' ? iso(d.sendTime.atMs) : { local: `${d.sendTime.date}T${d.sendTime.time}` },
    ...(d.ratePerMinute ? { rate_per_minute: d.ratePerMinute } : {}),
    variants: d.variants.map((v) => ({ name: v.name, weight: v.weight, ...(v.templateId ? { template: v.templateId } : { content: v.content }) })),
    control_percent: d.controlPercent,
    freshness: {
      ...(d.expiresAfterMs !== null ? { expires_after: `${Math.round(d.expiresAfterMs / 1000)}s` } : {}),
      late_start_after: `${Math.round(d.lateStart.afterMs / 1000)}s`,
      on_late_start: d.lateStart.action,
    },
    quiet_hours: d.quietHours,
    ...(d.channel === 'push' ? { priority: d.priority } : {}),
  };
}

export const campaignView = (c: CampaignRecord, history?: Awaited<ReturnType<CellStore['campaigns']['history']>>, definition?: unknown) => ({
  id: c.id,
  name: c.name,
  status: c.status,
  version: c.version,
  definition: definition ?? definitionView(c.definition),
  next_run_at: iso(c.nextRunAt),
  created_at: new Date(c.createdAt).toISOString(),
  updated_at: new Date(c.updatedAt).toISOString(),
  ...(history ? { history: history.map((h) => ({ at: new Date(h.at).toISOString(), kind: h.kind, detail: h.detail, run_id: h.runId })) } : {}),
});

const zero = (): Record<string, number> => Object.fromEntries(REPORT_STATES.map((s) => [s, 0]));
/** The control group is stored as cancelled/CONTROL_GROUP; reports count it on its own. */
const bucketOf = (r: CountRow): string => (r.state === 'cancelled' && r.code === 'CONTROL_GROUP' ? 'control' : r.state);

/** A campaign's counts: totals, per variant, per reason code, per run; and whether they add up to targeted. */
export function buildReport(c: CampaignRecord, runs: Awaited<ReturnType<CellStore['campaigns']['runs']>>, rows: CountRow[]) {
  const counts = zero();
  const variants: Record<string, Record<string, number>> = {};
  const reasons = new Map<string, { state: string; code: string; count: number; reason: string | null }>();
  const perRun = new Map<string, Record<string, number>>();
  for (const r of rows) {
    const bucket = bucketOf(r);
    counts[bucket] = (counts[bucket] ?? 0) + r.count;
    if (r.variant) (variants[r.variant] ??= zero())[bucket]! += r.count;
    const runCounts = perRun.get(r.runId) ?? zero();
    runCounts[bucket]! += r.count;
    perRun.set(r.runId, runCounts);
    if (r.code && bucket !== 'sent') {
      const key = `${bucket}/${r.code}`;
      const seen = reasons.get(key) ?? { state: bucket, code: r.code, count: 0, reason: FANOUT_REASONS[r.code]?.reason ?? null };
      seen.count += r.count;
      reasons.set(key, seen);
    }
  }
  const targeted = runs.reduce((n, r) => n + r.targeted, 0);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return {
    campaign_id: c.id,
    status: c.status,
    targeted,
    counts,
    reconciled: total === targeted,
    variants,
    reasons: [...reasons.values()].sort((a, b) => b.count - a.count),
    runs: runs.map((r) => ({ id: r.id, occurrence_at: new Date(r.occurrenceAt).toISOString(), status: r.status, targeted: r.targeted, counts: perRun.get(r.id) ?? zero() })),
  };
}

/**
 * Campaigns (issue 5): create and edit drafts, schedule, pause, resume, cancel, and a report that
 * reconciles. Campaigns live in the project's cell store with their runs and messages, so a status
 * change and what it does to queued messages commit together; a store outage answers 503.
 */
export function registerCampaignRoutes(app: FastifyInstance, deps: ApiDeps, engine: TemplateEngine): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const withStore = <T>(project: ProjectRecord, fn: (store: CellStore) => Promise<T>): Promise<T> => deps.cells.get(project.cellId).read(fn);

  const find = async (project: ProjectRecord, id: string): Promise<CampaignRecord> => {
    const c = await withStore(project, (s) => s.campaigns.get(project.id, id, 'campaign'));
    if (!c) throw new HeraldError('CAMPAIGN_NOT_FOUND', { message: `No campaign "${id}" in this project.` });
    return c;
  };

  const checked = async (project: ProjectRecord, body: unknown): Promise<{ definition: CampaignDefinition; warnings: unknown[] }> => {
    const result = checkCampaign(body, await campaignContextOf(deps, project, engine));
    if (!result.ok) throw new HeraldError('VALIDATION_FAILED', { details: result.problems });
    return { definition: result.definition, warnings: result.warnings };
  };

  const stateError = (c: CampaignRecord, action: string, allowed: string) =>
    new HeraldError('CAMPAIGN_STATE', { message: `The campaign is ${c.status}; it can be ${action} only when ${allowed}.` });

  app.post(
    '/v1/campaigns',
    {
      preHandler: secret,
      schema: {
        tags: ['campaigns'],
        summary: 'Create a campaign (a draft)',
        description: 'Checked now against the project’s segments, audiences and templates; schedule it with POST /v1/campaigns/{id}/schedule.',
        security,
        body: CampaignBody,
        response: { 201: CampaignView, ...errors },
      },
    },
    async (request, reply) => {
      const { project } = principalOf(request);
      const { definition } = await checked(project, request.body);
      const now = deps.clock.now();
      const c: CampaignRecord = { id: timeOrderedId('cmp', now), projectId: project.id, kind: 'campaign', name: definition.name, status: 'draft', definition, version: 1, nextRunAt: null, createdAt: now, updatedAt: now };
      if (!(await withStore(project, (s) => s.campaigns.create(c, 'created as a draft')))) {
        throw new HeraldError('CAMPAIGN_EXISTS', { message: `A campaign or automation named "${definition.name}" already exists.` });
      }
      return reply.code(201).send(campaignView(c));
    },
  );

  app.get(
    '/v1/campaigns',
    {
      preHandler: secret,
      schema: {
        tags: ['campaigns'],
        summary: 'List campaigns',
        security,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), cursor: Type.Optional(Type.String({ maxLength: 200 })) }),
        response: { 200: Type.Object({ campaigns: Type.Array(CampaignView), next: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const { project } = principalOf(request);
      const q = request.query as { limit?: number; cursor?: string };
      const limit = q.limit ?? 50;
      const list = await withStore(project, (s) => s.campaigns.list(project.id, ['campaign'], { limit: limit + 1, after: q.cursor }));
      return { campaigns: list.slice(0, limit).map((c) => campaignView(c)), next: list.length > limit ? list[limit - 1]!.id : null };
    },
  );

  app.get(
    '/v1/campaigns/:id',
    { preHandler: secret, schema: { tags: ['campaigns'], summary: 'Read a campaign (by id or name), with its history', security, params: Id, response: { 200: CampaignView, ...errors } } },
    async (request) => {
      const { project } = principalOf(request);
      const c = await find(project, (request.params as { id: string }).id);
      return campaignView(c, await withStore(project, (s) => s.campaigns.history(c.id)));
    },
  );

  app.put(
    '/v1/campaigns/:id',
    {
      preHandler: secret,
      schema: { tags: ['campaigns'], summary: 'Replace a draft or scheduled campaign', description: 'A scheduled campaign stays scheduled at its (new) time.', security, params: Id, body: CampaignBody, response: { 200: CampaignView, ...errors } },
    },
    async (request) => {
      const { project } = principalOf(request);
      const c = await find(project, (request.params as { id: string }).id);
      if (c.status !== 'draft' && c.status !== 'scheduled') throw stateError(c, 'edited', 'draft or scheduled');
      const { definition } = await checked(project, request.body);
      const now = deps.clock.now();
      let nextRunAt: number | null = null;
      if (c.status === 'scheduled') {
        const when = checkSendTime(definition.sendTime, now);
        if (!when.ok) throw new HeraldError('VALIDATION_FAILED', { details: [when.problem] });
        nextRunAt = when.firstAt;
      }
      const ok = await withStore(project, (s) =>
        s.campaigns.change(c.id, { version: c.version, from: [c.status] }, { status: c.status, definition, nextRunAt, at: now, history: { kind: 'edited', detail: 'the definition was replaced' } }),
      ).catch((error: unknown) => {
        if (isUniqueViolation(error)) throw new HeraldError('CAMPAIGN_EXISTS', { message: `A campaign or automation named "${definition.name}" already exists.` });
        throw error;
      });
      if (!ok) throw new HeraldError('CAMPAIGN_CHANGED');
      deps.cells.get(project.cellId).wakeOrchestrator();
      return campaignView(await find(project, c.id));
    },
  );

  app.delete(
    '/v1/campaigns/:id',
    { preHandler: secret, schema: { tags: ['campaigns'], summary: 'Delete a draft (cancel anything else)', security, params: Id, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { project } = principalOf(request);
      const c = await find(project, (request.params as { id: string }).id);
      if (c.status !== 'draft') throw stateError(c, 'deleted', 'a draft (cancel it instead: its history and report stay)');
      if (!(await withStore(project, (s) => s.campaigns.remove(c.id, c.version)))) throw new HeraldError('CAMPAIGN_CHANGED');
      return reply.code(204).send();
    },
  );

  const action = (name: 'schedule' | 'pause' | 'resume' | 'cancel', summary: string) =>
    app.post(
      `/v1/campaigns/:id/${name}`,
      { preHandler: secret, schema: { tags: ['campaigns'], summary, security, params: Id, response: { 200: CampaignView, ...errors } } },
      async (request) => {
        const { project } = principalOf(request);
        const c = await find(project, (request.params as { id: string }).id);
        const now = deps.clock.now();
        const ok = await withStore(project, async (s) => {
          switch (name) {
            case 'schedule': {
              if (c.status !== 'draft') throw stateError(c, 'scheduled', 'a draft');
              const when = checkSendTime(c.definition.sendTime, now);
              if (!when.ok) throw new HeraldError('VALIDATION_FAILED', { details: [when.problem] });
              const detail = c.definition.sendTime.type === 'now' ? 'scheduled to start now' : `scheduled to start at ${new Date(when.firstAt).toISOString()}`;
              return s.campaigns.change(c.id, { version: c.version, from: ['draft'] }, { status: 'scheduled', nextRunAt: when.firstAt, at: now, history: { kind: 'scheduled', detail } });
            }
            case 'pause':
              if (c.status !== 'running') throw stateError(c, 'paused', 'running');
              return CampaignActions.pause(s.campaigns, c, now);
            case 'resume':
              if (c.status !== 'paused') throw stateError(c, 'resumed', 'paused');
              return CampaignActions.resume(s.campaigns, c, now);
            case 'cancel':
              if (!['scheduled', 'running', 'paused'].includes(c.status)) throw stateError(c, 'cancelled', 'scheduled, running or paused');
              return CampaignActions.cancel(s.campaigns, c, now);
          }
        });
        if (!ok) throw new HeraldError('CAMPAIGN_CHANGED');
        deps.cells.get(project.cellId).wakeOrchestrator();
        const after = await find(project, c.id);
        return campaignView(after, await withStore(project, (s) => s.campaigns.history(c.id)));
      },
    );
  action('schedule', 'Schedule a draft (its send time must not have passed)');
  action('pause', 'Pause a running campaign: queued messages are held');
  action('resume', 'Resume a paused campaign: held messages are due again, shifted by the pause');
  action('cancel', 'Cancel: messages not yet sent are cancelled, with the reason');

  app.get(
    '/v1/campaigns/:id/report',
    {
      preHandler: secret,
      schema: {
        tags: ['campaigns'],
        summary: 'Counts: targeted, sent, failed, expired, suppressed, capped, cancelled, control — per variant, reason and run',
        security,
        params: Id,
        response: { 200: ReportView, ...errors },
      },
    },
    async (request) => {
      const { project } = principalOf(request);
      const c = await find(project, (request.params as { id: string }).id);
      const [runs, rows] = await withStore(project, async (s) => [await s.campaigns.runs(c.id), await s.campaigns.counts(c.id)] as const);
      return buildReport(c, runs, rows);
    },
  );

  const settingsView = (s: MessagingSettings) => ({
    timezone: s.timezone,
    frequency_caps: s.caps.map((c) => ({ channel: c.channel, max: c.max, window: `${Math.round(c.windowMs / 1000)}s` })),
    quiet_hours: s.quietHours,
  });
  const SettingsView = Type.Object({ timezone: Type.String(), frequency_caps: Type.Array(Type.Object({ channel: Type.String(), max: Type.Integer(), window: Type.String() })), quiet_hours: Type.Union([Type.Object({ start: Type.String(), end: Type.String() }), Type.Null()]) });
  app.get(
    '/v1/settings/messaging',
    { preHandler: secret, schema: { tags: ['campaigns'], summary: 'Read the project’s time zone, frequency caps and quiet hours', security, response: { 200: SettingsView, ...errors } } },
    async (request) => {
      const { project } = principalOf(request);
      return settingsView(await withStore(project, (s) => s.campaigns.settings(project.id)));
    },
  );
  app.put(
    '/v1/settings/messaging',
    { preHandler: secret, schema: { tags: ['campaigns'], summary: 'Replace the project’s time zone, frequency caps and quiet hours', security, body: SettingsBody, response: { 200: SettingsView, ...errors } } },
    async (request) => {
      const { project } = principalOf(request);
      const result = checkSettings(request.body);
      if (!result.ok) throw new HeraldError('VALIDATION_FAILED', { details: result.problems });
      await withStore(project, (s) => s.campaigns.putSettings(project.id, result.settings, deps.clock.now()));
      return settingsView(result.settings);
    },
  );
}
