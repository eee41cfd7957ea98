import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { timeOrderedId } from '../../core/ids.ts';
import { isUniqueViolation, type ProjectRecord } from '../../control/control-store.ts';
import type { TemplateEngine } from '../../delivery/templates/template-engine.ts';
import type { CampaignRecord, RecurringDefinition } from '../../orchestration/campaign-model.ts';
import { CampaignActions } from '../../orchestration/campaign-runner.ts';
import { checkRecurring } from '../../orchestration/campaign-validation.ts';
import type { JourneyDefinition } from '../../orchestration/journey-model.ts';
import { checkJourney } from '../../orchestration/journey-validation.ts';
import { nextOccurrence } from '../../orchestration/schedule.ts';
import type { CellStore } from '../../storage/cell-store.ts';
import { JourneySql } from '../../storage/sql-journeys.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { buildReport, campaignContextOf, campaignView, definitionView, errors, Id, iso, security } from './campaign-routes.ts';

type Automation = CampaignRecord<RecurringDefinition> | CampaignRecord<JourneyDefinition>;
const KINDS: CampaignRecord['kind'][] = ['recurring', 'journey'];

const AutomationBody = Type.Object(
  {
    type: Type.Optional(Type.String({ description: '"journey" (event- or segment-triggered steps) or "recurring" (a campaign on a schedule).' })),
  },
  {
    additionalProperties: true,
    description:
      'A journey: name, entry ({"event", "where"} or {"segment"}), re_entry, exit_events, freshness, start, steps (wait, branch, wait_for_event, send, exit). A recurring automation: the fields of a campaign (no send_at) plus schedule ({"cron"} or {"every": "day"|"week", "at", "days"}, timezone, starts_at, ends_at) and cooldown. Every field is checked by Herald; a 400 names each problem’s path.',
  },
);
const AutomationView = Type.Object({
  id: Type.String(),
  type: Type.String(),
  name: Type.String(),
  status: Type.String({ description: 'draft, running, paused, completed or cancelled (stopped)' }),
  version: Type.Integer(),
  definition: Type.Unknown(),
  next_run_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  history: Type.Optional(Type.Array(Type.Object({ at: Type.String(), kind: Type.String(), detail: Type.String(), run_id: Type.Union([Type.String(), Type.Null()]) }))),
  journey_version: Type.Optional(Type.Integer({ description: 'Journeys: the version new entrants follow.' })),
});

/** A journey's definition without the runtime's parsed fields (ms values), as it is written. */
function journeyView(d: JourneyDefinition): unknown {
  return JSON.parse(JSON.stringify(d, (key, value: unknown) => (key.endsWith('Ms') || key === 'untilMinuteOfDay' ? undefined : value)));
}

function automationView(a: Automation, history?: Awaited<ReturnType<CellStore['campaigns']['history']>>, journeyVersion?: number) {
  if (a.kind === 'journey') {
    const view = campaignView(a as unknown as CampaignRecord, history, journeyView(a.definition as JourneyDefinition));
    return { ...view, type: 'journey', ...(journeyVersion ? { journey_version: journeyVersion } : {}) };
  }
  const base = campaignView(a as unknown as CampaignRecord, history, {});
  const d = a.definition as RecurringDefinition;
  const campaign = definitionView(d);
  delete campaign.send_at;
  return {
    ...base,
    type: 'recurring',
    definition: {
      ...campaign,
      schedule: { ...d.recurrence, ...(d.timezone ? { timezone: d.timezone } : {}), ...(d.startsAtMs !== null ? { starts_at: iso(d.startsAtMs) } : {}), ...(d.endsAtMs !== null ? { ends_at: iso(d.endsAtMs) } : {}) },
      ...(d.cooldownMs !== null ? { cooldown: `${Math.round(d.cooldownMs / 1000)}s` } : {}),
    },
  };
}

/**
 * Automations (issue 5, parts 3–4): recurring campaigns on a schedule and trigger journeys, created
 * as drafts, activated, paused, resumed, stopped, edited (a running journey gets a new version;
 * users inside keep theirs), with reports per occurrence or per step.
 */
export function registerAutomationRoutes(app: FastifyInstance, deps: ApiDeps, engine: TemplateEngine): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const withStore = <T>(project: ProjectRecord, fn: (store: CellStore) => Promise<T>): Promise<T> => deps.cells.get(project.cellId).read(fn);

  const find = async (project: ProjectRecord, id: string): Promise<Automation> => {
    const a = await withStore(project, (s) => s.campaigns.get(project.id, id, KINDS));
    if (!a) throw new HeraldError('CAMPAIGN_NOT_FOUND', { message: `No automation "${id}" in this project.` });
    return a as unknown as Automation;
  };

  const checked = async (project: ProjectRecord, body: unknown, type?: string): Promise<{ kind: 'recurring' | 'journey'; definition: RecurringDefinition | JourneyDefinition }> => {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    const kind = type ?? b.type;
    if (kind !== 'journey' && kind !== 'recurring') throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '/type', code: 'INVALID_VALUE', message: 'must be "journey" or "recurring"' }] });
    if (type !== undefined && b.type !== undefined && b.type !== type) throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '/type', code: 'IMMUTABLE', message: `this automation is a ${type}; its type cannot change` }] });
    const ctx = await campaignContextOf(deps, project, engine);
    if (kind === 'journey') {
      const rest = { ...b };
      delete rest.type;
      const result = checkJourney(rest, { segment: ctx.segment, templateChannel: (ref) => ctx.templateChannel(ref), checkContent: (channel, content, path, problems) => ctx.checkContent(channel as never, content, path, problems) });
      if (!result.ok) throw new HeraldError('VALIDATION_FAILED', { details: result.problems });
      return { kind, definition: result.journey };
    }
    const settings = await withStore(project, (s) => s.campaigns.settings(project.id));
    const result = checkRecurring(b, ctx, deps.clock.now(), settings.timezone);
    if (!result.ok) throw new HeraldError('VALIDATION_FAILED', { details: result.problems });
    return { kind, definition: result.definition };
  };

  /** When a recurring automation fires next, from now; null if never again. */
  const nextRun = async (project: ProjectRecord, d: RecurringDefinition, now: number): Promise<number | null> => {
    const zone = d.timezone ?? (await withStore(project, (s) => s.campaigns.settings(project.id))).timezone;
    return nextOccurrence(d.recurrence, zone, now, { ...(d.startsAtMs !== null ? { startMs: d.startsAtMs } : {}), ...(d.endsAtMs !== null ? { endMs: d.endsAtMs } : {}) });
  };

  const detail = async (project: ProjectRecord, a: Automation) => {
    const history = await withStore(project, (s) => s.campaigns.history(a.id));
    const version = a.kind === 'journey' ? (await withStore(project, (s) => JourneySql.versions(s.campaigns.executor, a.id))).at(-1)?.version : undefined;
    return automationView(a, history, version);
  };

  app.post(
    '/v1/automations',
    { preHandler: secret, schema: { tags: ['automations'], summary: 'Create an automation (a draft): a journey or a recurring campaign', security, body: AutomationBody, response: { 201: AutomationView, ...errors } } },
    async (request, reply) => {
      const { project } = principalOf(request);
      const { kind, definition } = await checked(project, request.body);
      const now = deps.clock.now();
      const a = { id: timeOrderedId(kind === 'journey' ? 'jrn' : 'rec', now), projectId: project.id, kind, name: definition.name, status: 'draft', definition, version: 1, nextRunAt: null, createdAt: now, updatedAt: now } as Automation;
      if (!(await withStore(project, (s) => s.campaigns.create(a as unknown as CampaignRecord, 'created as a draft')))) {
        throw new HeraldError('CAMPAIGN_EXISTS', { message: `A campaign or automation named "${definition.name}" already exists.` });
      }
      return reply.code(201).send(automationView(a));
    },
  );

  app.get(
    '/v1/automations',
    {
      preHandler: secret,
      schema: {
        tags: ['automations'],
        summary: 'List automations',
        security,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), cursor: Type.Optional(Type.String({ maxLength: 200 })) }),
        response: { 200: Type.Object({ automations: Type.Array(AutomationView), next: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const { project } = principalOf(request);
      const q = request.query as { limit?: number; cursor?: string };
      const limit = q.limit ?? 50;
      const list = await withStore(project, (s) => s.campaigns.list(project.id, KINDS, { limit: limit + 1, after: q.cursor }));
      return { automations: list.slice(0, limit).map((a) => automationView(a as unknown as Automation)), next: list.length > limit ? list[limit - 1]!.id : null };
    },
  );

  app.get(
    '/v1/automations/:id',
    { preHandler: secret, schema: { tags: ['automations'], summary: 'Read an automation (by id or name), with its history', security, params: Id, response: { 200: AutomationView, ...errors } } },
    async (request) => {
      const { project } = principalOf(request);
      return detail(project, await find(project, (request.params as { id: string }).id));
    },
  );

  app.put(
    '/v1/automations/:id',
    {
      preHandler: secret,
      schema: {
        tags: ['automations'],
        summary: 'Replace an automation’s definition',
        description: 'A running or paused journey gets a new version: users already inside keep the version they entered with. A recurring automation’s next occurrences use the new definition.',
        security,
        params: Id,
        body: AutomationBody,
        response: { 200: AutomationView, ...errors },
      },
    },
    async (request) => {
      const { project } = principalOf(request);
      const a = await find(project, (request.params as { id: string }).id);
      if (a.status === 'completed' || a.status === 'cancelled') throw new HeraldError('CAMPAIGN_STATE', { message: `The automation is ${a.status}; create a new one.` });
      const { definition } = await checked(project, request.body, a.kind);
      const now = deps.clock.now();
      const live = a.status === 'running' || a.status === 'paused';
      const nextRunAt = a.kind === 'recurring' && a.status === 'running' ? await nextRun(project, definition as RecurringDefinition, now) : a.nextRunAt;
      const ok = await withStore(project, (s) =>
        s.campaigns.change(
          a.id,
          { version: a.version, from: [a.status] },
          { status: a.status, definition: definition as never, nextRunAt, at: now, history: { kind: 'edited', detail: a.kind === 'journey' && live ? 'a new version: new entrants follow it, users inside keep theirs' : 'the definition was replaced' } },
          async (tx) => {
            if (a.kind === 'journey' && live) await JourneySql.putVersion(tx, a.id, definition as JourneyDefinition, now);
          },
        ),
      ).catch((error: unknown) => {
        if (isUniqueViolation(error)) throw new HeraldError('CAMPAIGN_EXISTS', { message: `A campaign or automation named "${definition.name}" already exists.` });
        throw error;
      });
      if (!ok) throw new HeraldError('CAMPAIGN_CHANGED');
      deps.cells.get(project.cellId).wakeOrchestrator();
      return detail(project, await find(project, a.id));
    },
  );

  app.delete(
    '/v1/automations/:id',
    { preHandler: secret, schema: { tags: ['automations'], summary: 'Delete a draft (stop anything else)', security, params: Id, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { project } = principalOf(request);
      const a = await find(project, (request.params as { id: string }).id);
      if (a.status !== 'draft') throw new HeraldError('CAMPAIGN_STATE', { message: `The automation is ${a.status}; only a draft can be deleted (stop it instead: its history and report stay).` });
      if (!(await withStore(project, (s) => s.campaigns.remove(a.id, a.version)))) throw new HeraldError('CAMPAIGN_CHANGED');
      return reply.code(204).send();
    },
  );

  const action = (name: 'activate' | 'pause' | 'resume' | 'stop', summary: string) =>
    app.post(
      `/v1/automations/:id/${name}`,
      { preHandler: secret, schema: { tags: ['automations'], summary, security, params: Id, response: { 200: AutomationView, ...errors } } },
      async (request) => {
        const { project } = principalOf(request);
        const a = await find(project, (request.params as { id: string }).id);
        const now = deps.clock.now();
        const state = (allowed: string) => new HeraldError('CAMPAIGN_STATE', { message: `The automation is ${a.status}; it can be ${name === 'stop' ? 'stopped' : `${name}d`} only when ${allowed}.` });
        const expected = { version: a.version, from: [a.status] };
        const ok = await withStore(project, async (s) => {
          const c = s.campaigns;
          switch (name) {
            case 'activate': {
              if (a.status !== 'draft') throw state('a draft');
              let nextRunAt: number | null = null;
              if (a.kind === 'recurring') {
                nextRunAt = await nextRun(project, a.definition as RecurringDefinition, now);
                if (nextRunAt === null) throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '/schedule', code: 'NEVER_FIRES', message: 'this schedule never fires again' }] });
              }
              const what = a.kind === 'journey' ? 'activated: users enter from now on' : `activated: first occurrence at ${iso(nextRunAt)}`;
              return c.change(a.id, expected, { status: 'running', nextRunAt, at: now, history: { kind: 'activated', detail: what } }, async (tx) => {
                if (a.kind === 'journey') await JourneySql.putVersion(tx, a.id, a.definition as JourneyDefinition, now);
              });
            }
            case 'pause':
              if (a.status !== 'running') throw state('running');
              if (a.kind === 'recurring') return CampaignActions.pause(c, a as unknown as CampaignRecord, now);
              return c.change(a.id, expected, { status: 'paused', nextRunAt: null, at: now, history: { kind: 'paused', detail: 'paused: no one enters, timers wait (they fire on resume, or expire per the freshness policy)' } });
            case 'resume': {
              if (a.status !== 'paused') throw state('paused');
              if (a.kind === 'journey') return c.change(a.id, expected, { status: 'running', nextRunAt: null, at: now, history: { kind: 'resumed', detail: 'resumed' } });
              const resumed = await CampaignActions.resume(c, a as unknown as CampaignRecord, now);
              const fresh = await c.byId(a.id);
              if (resumed && fresh) await c.change(a.id, { version: fresh.version, from: ['running'] }, { status: 'running', nextRunAt: await nextRun(project, a.definition as RecurringDefinition, now), at: now, history: { kind: 'rescheduled', detail: 'the next occurrence is counted from now' } });
              return resumed;
            }
            case 'stop':
              if (!['running', 'paused'].includes(a.status)) throw state('running or paused');
              if (a.kind === 'recurring') return CampaignActions.cancel(c, a as unknown as CampaignRecord, now);
              return c.change(a.id, expected, { status: 'cancelled', nextRunAt: null, at: now, history: { kind: 'stopped', detail: 'stopped: users inside leave, their queued messages are cancelled' } }, async (tx) => {
                await JourneySql.cancelAll(tx, a.id, now);
                await tx.run("UPDATE messages SET state = 'cancelled', error_code = 'JOURNEY_STOPPED', reason = 'the journey was stopped', updated_at = ? WHERE campaign_id = ? AND state = 'queued'", [now, a.id]);
              });
          }
        });
        if (!ok) throw new HeraldError('CAMPAIGN_CHANGED');
        deps.cells.get(project.cellId).wakeOrchestrator();
        return detail(project, await find(project, a.id));
      },
    );
  action('activate', 'Activate a draft: a journey starts entering users, a recurring automation is scheduled');
  action('pause', 'Pause: no one enters and timers wait (journey); queued messages are held (recurring)');
  action('resume', 'Resume a paused automation');
  action('stop', 'Stop for good: pending steps and queued messages are cancelled');

  app.get(
    '/v1/automations/:id/report',
    {
      preHandler: secret,
      schema: {
        tags: ['automations'],
        summary: 'Counts per occurrence (recurring) or per step (journey): targeted, sent, failed, expired, suppressed, capped, cancelled, with reasons',
        security,
        params: Id,
        response: { 200: Type.Unknown(), ...errors },
      },
    },
    async (request) => {
      const { project } = principalOf(request);
      const a = await find(project, (request.params as { id: string }).id);
      const [runs, rows] = await withStore(project, async (s) => [await s.campaigns.runs(a.id), await s.campaigns.counts(a.id)] as const);
      if (a.kind === 'recurring') {
        const report = buildReport(a as unknown as CampaignRecord, runs, rows);
        return { automation_id: a.id, type: 'recurring', ...report, occurrences: report.runs };
      }
      const [steps, enrollments] = await withStore(project, async (s) => [await JourneySql.stepCounts(s.campaigns.executor, a.id), await JourneySql.enrollmentStates(s.campaigns.executor, a.id)] as const);
      const def = a.definition as JourneyDefinition;
      const messagesByStep = new Map<string, Record<string, number>>();
      for (const r of rows) {
        const stepId = r.runId.slice(a.id.length + 1);
        const m = messagesByStep.get(stepId) ?? {};
        const bucket = r.state;
        m[bucket] = (m[bucket] ?? 0) + r.count;
        messagesByStep.set(stepId, m);
      }
      const total = buildReport(a as unknown as CampaignRecord, [], rows);
      return {
        automation_id: a.id,
        type: 'journey',
        status: a.status,
        enrollments,
        messages: { counts: total.counts, reasons: total.reasons },
        steps: def.steps.map((step) => ({
          id: step.id,
          type: step.type,
          outcomes: Object.fromEntries(steps.filter((c) => c.stepId === step.id).map((c) => [c.outcome, c.count])),
          ...(step.type === 'send' ? { messages: messagesByStep.get(step.id) ?? {} } : {}),
        })),
      };
    },
  );
}
