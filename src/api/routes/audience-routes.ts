import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HeraldError, isHeraldError, type ErrorDetail } from '../../core/errors.ts';
import { timeOrderedId } from '../../core/ids.ts';
import type { AudienceDefinition } from '../../control/audience-store.ts';
import type { ProjectRecord } from '../../control/control-store.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { AudienceMembersRecord } from '../../ingest/records.ts';
import type { AudienceMember, AudienceState } from '../../storage/cell-store.ts';
import { isObject, MAX_MEMBERS_PER_CALL, readMemberLists, type MemberLists } from '../../targeting/audience-members.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { AudienceView, audienceView, findAudience } from '../audience-views.ts';
import { appendRecords, waitForQuery } from '../ingest-submit.ts';
import { intParam, invalidQuery, stringParam } from '../query.ts';
import { NAME, refersTo } from './saved-segment-routes.ts';
import type { AudienceUploadJobs } from '../audience-upload-job.ts';

const security = [{ bearerAuth: [] as string[] }];
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };
const Params = Type.Object({ id: Type.String({ description: 'The audience id (aud_…) or name.' }) });
const MemberListsBody = Type.Object({
  custom_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }))),
  install_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }))),
});
const Accepted = Type.Object({ accepted: Type.Integer({ description: 'Members in the call.' }), ingest_id: Type.String({ description: 'Pass as ?wait_for= to read your write.' }) });

/** The live state of a project's audiences; null while the cell store cannot answer (definitions still list). */
async function statesOf(deps: ApiDeps, project: ProjectRecord): Promise<Map<string, AudienceState> | null> {
  try {
    return new Map((await deps.cells.get(project.cellId).read((s) => s.audienceStates(project.id))).map((s) => [s.audienceId, s]));
  } catch (error) {
    if (isHeraldError(error) && error.code === 'STORE_UNAVAILABLE') return null;
    throw error;
  }
}

function invalid(problems: ErrorDetail[], budget: { tooMany?: string }): void {
  if (budget.tooMany) {
    throw new HeraldError('TOO_MANY_MEMBERS', {
      message: `A call may carry at most ${MAX_MEMBERS_PER_CALL.toLocaleString('en')} members; upload larger lists (POST /v1/audiences/{id}/uploads).`,
      details: [{ path: budget.tooMany, code: 'TOO_MANY_MEMBERS', message: `is member number ${MAX_MEMBERS_PER_CALL + 1}` }],
    });
  }
  if (problems.length > 0) throw new HeraldError('VALIDATION_FAILED', { details: problems });
}

function checkKeys(body: Record<string, unknown>, allowed: readonly string[], problems: ErrorDetail[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) problems.push({ path: `/${key}`, code: 'UNKNOWN_FIELD', message: `is not a field (${allowed.join(', ')})` });
}

/** `{add?: lists, remove?: lists}`, at most 10,000 members in all; a member both added and removed is refused. */
function readChange(body: unknown): { add: MemberLists; remove: MemberLists } {
  const problems: ErrorDetail[] = [];
  const budget: { left: number; tooMany?: string } = { left: MAX_MEMBERS_PER_CALL };
  if (!isObject(body)) throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '', code: 'INVALID_TYPE', message: 'the body must be {"add": {...}, "remove": {...}}' }] });
  checkKeys(body, ['add', 'remove'], problems);
  const add = readMemberLists(body.add, '/add', problems, budget);
  const remove = readMemberLists(body.remove, '/remove', problems, budget);
  if (body.add === undefined && body.remove === undefined) problems.push({ path: '/add', code: 'REQUIRED', message: 'give add, remove or both' });
  for (const kind of ['custom_ids', 'install_ids'] as const) {
    const added = new Set(add[kind]);
    remove[kind].forEach((m, i) => {
      if (added.has(m)) problems.push({ path: `/remove/${kind}/${i}`, code: 'CONFLICTING_MEMBER', message: `"${m}" is both added and removed` });
    });
  }
  invalid(problems, budget);
  return { add, remove };
}

function readReplacement(body: unknown): MemberLists {
  const problems: ErrorDetail[] = [];
  const budget: { left: number; tooMany?: string } = { left: MAX_MEMBERS_PER_CALL };
  const lists = readMemberLists(body ?? {}, '', problems, budget);
  invalid(problems, budget);
  return lists;
}

const size = (l: MemberLists) => l.custom_ids.length + l.install_ids.length;

function encodeCursor(m: AudienceMember): string {
  return Buffer.from(JSON.stringify([m.kind, m.member])).toString('base64url');
}

function decodeCursor(raw: string | undefined): AudienceMember | undefined {
  if (raw === undefined) return undefined;
  try {
    const [kind, member] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown[];
    if ((kind === 'custom_id' || kind === 'install_id') && typeof member === 'string') return { kind, member };
  } catch {
    // fall through
  }
  throw invalidQuery('cursor', 'is not a cursor this endpoint returned');
}

/**
 * Custom audiences (issue 4, part 4): definitions in the control plane; members by custom_id or
 * install_id written through the cell's log (202 once durable, I1) and applied by the applier.
 */
export function registerAudienceRoutes(app: FastifyInstance, deps: ApiDeps, uploads: AudienceUploadJobs): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const target = async (request: FastifyRequest): Promise<{ project: ProjectRecord; audience: AudienceDefinition }> => {
    const { project } = principalOf(request);
    return { project, audience: await findAudience(deps, project.id, (request.params as { id: string }).id) };
  };
  const record = (project: ProjectRecord, audience: AudienceDefinition, op: AudienceMembersRecord['op'], lists?: MemberLists, extra: Partial<AudienceMembersRecord> = {}): AudienceMembersRecord => ({
    kind: 'audience.members',
    project_id: project.id,
    audience_id: audience.id,
    op,
    ...(lists ? { custom_ids: lists.custom_ids, install_ids: lists.install_ids } : {}),
    ...extra,
    received_at: deps.clock.now(),
  });
  /** 202 `{accepted: members, ingest_id}` once the records are durable (I1); a repeated Idempotency-Key gets the first answer. */
  const submit = async (request: FastifyRequest, reply: FastifyReply, records: AudienceMembersRecord[], members: number) => {
    const result = await appendRecords(deps.cells, request, records, { members });
    if (result.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(202).send({ accepted: Number(result.meta.members ?? 0), ingest_id: result.ingestId });
  };

  app.post(
    '/v1/audiences',
    {
      preHandler: secret,
      schema: {
        tags: ['audiences'], summary: 'Create an audience', security,
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), description: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
        response: { 201: AudienceView, ...errors },
      },
    },
    async (request, reply) => {
      const { project } = principalOf(request);
      const problems: ErrorDetail[] = [];
      const body = request.body;
      if (!isObject(body)) throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '', code: 'INVALID_TYPE', message: 'the body must be {"name": …, "description"?: …}' }] });
      checkKeys(body, ['name', 'description'], problems);
      if (typeof body.name !== 'string' || !NAME.test(body.name)) problems.push({ path: '/name', code: 'INVALID_VALUE', message: 'must be 1–100 letters, digits, spaces or _ . - :, starting with a letter or digit' });
      if (body.description !== undefined && !(typeof body.description === 'string' && body.description.length <= 500)) problems.push({ path: '/description', code: 'INVALID_VALUE', message: 'must be a string of at most 500 characters' });
      if (problems.length > 0) throw new HeraldError('VALIDATION_FAILED', { details: problems });
      const now = deps.clock.now();
      const audience: AudienceDefinition = { id: timeOrderedId('aud', now), projectId: project.id, name: body.name as string, description: (body.description as string | undefined) ?? null, createdAt: now, updatedAt: now };
      await deps.control.audiences.insertAudience(audience);
      return reply.code(201).send(audienceView(audience, undefined));
    },
  );

  app.get(
    '/v1/audiences',
    { preHandler: secret, schema: { tags: ['audiences'], summary: 'List audiences', security, response: { 200: Type.Object({ audiences: Type.Array(AudienceView) }), ...errors } } },
    async (request) => {
      const { project } = principalOf(request);
      const [list, states] = await Promise.all([deps.control.audiences.listAudiences(project.id), statesOf(deps, project)]);
      return { audiences: list.map((a) => audienceView(a, states ? states.get(a.id) : null)) };
    },
  );

  app.get(
    '/v1/audiences/:id',
    {
      preHandler: secret,
      schema: { tags: ['audiences'], summary: 'Read an audience (by id or name)', security, params: Params, querystring: Type.Object({ wait_for: Type.Optional(Type.String()) }), response: { 200: AudienceView, ...errors } },
    },
    async (request) => {
      const { project, audience } = await target(request);
      await waitForQuery(deps.cells.get(project.cellId), request.query);
      const states = await statesOf(deps, project);
      return audienceView(audience, states ? states.get(audience.id) : null);
    },
  );

  app.delete(
    '/v1/audiences/:id',
    { preHandler: secret, schema: { tags: ['audiences'], summary: 'Delete an audience and its members', security, params: Params, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { project, audience } = await target(request);
      const users = (await deps.control.config.listSegments(project.id)).filter((s) => refersTo(s.definition, 'audience', new Set([audience.name])));
      if (users.length > 0) {
        throw new HeraldError('AUDIENCE_IN_USE', { message: `Audience "${audience.name}" is used by segment ${users.map((u) => `"${u.name}"`).join(', ')}; change those first.` });
      }
      uploads.abortAudience(audience.id);
      // The members go first, through the log: if that fails nothing changed and the call can be retried.
      await appendRecords(deps.cells, request, [record(project, audience, 'delete')]);
      await deps.control.audiences.deleteAudience(project.id, audience.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/audiences/:id/members',
    {
      preHandler: secret,
      schema: {
        tags: ['audiences'], summary: 'Add and remove members', security, params: Params,
        description: 'At most 10,000 members per call in all; a 202 means the change is durable in the log; it is applied shortly after (pass the ingest_id as ?wait_for=).',
        body: Type.Object({ add: Type.Optional(MemberListsBody), remove: Type.Optional(MemberListsBody) }),
        response: { 202: Accepted, ...errors },
      },
    },
    async (request, reply) => {
      const { project, audience } = await target(request);
      const { add, remove } = readChange(request.body);
      const records = [...(size(add) > 0 ? [record(project, audience, 'add', add)] : []), ...(size(remove) > 0 ? [record(project, audience, 'remove', remove)] : [])];
      return submit(request, reply, records, size(add) + size(remove));
    },
  );

  app.put(
    '/v1/audiences/:id/members',
    {
      preHandler: secret,
      schema: {
        tags: ['audiences'], summary: 'Replace all members', security, params: Params,
        description: 'At most 10,000 members; readers see the old set until the new one is applied whole. Larger lists: POST /v1/audiences/{id}/uploads?mode=replace.',
        body: MemberListsBody,
        response: { 202: Accepted, ...errors },
      },
    },
    async (request, reply) => {
      const { project, audience } = await target(request);
      const lists = readReplacement(request.body);
      const version = await deps.control.audiences.nextVersion(project.id, audience.id);
      return submit(request, reply, [record(project, audience, 'commit', lists, { version, mode: 'replace' })], size(lists));
    },
  );

  app.get(
    '/v1/audiences/:id/members',
    {
      preHandler: secret,
      schema: {
        tags: ['audiences'], summary: 'List the live members', security, params: Params,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })), cursor: Type.Optional(Type.String()), wait_for: Type.Optional(Type.String()) }),
        response: {
          200: Type.Object({ members: Type.Array(Type.Object({ custom_id: Type.Optional(Type.String()), install_id: Type.Optional(Type.String()) })), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errors,
        },
      },
    },
    async (request) => {
      const { project, audience } = await target(request);
      const runtime = deps.cells.get(project.cellId);
      await waitForQuery(runtime, request.query);
      const limit = intParam(request.query, 'limit', 1000, 1, 10_000);
      const after = decodeCursor(stringParam(request.query, 'cursor'));
      const page = await runtime.read((s) => s.audienceMembers(project.id, audience.id, { limit, after }));
      const last = page[page.length - 1];
      return { members: page.map((m) => ({ [m.kind]: m.member })), next_cursor: page.length === limit && last ? encodeCursor(last) : null };
    },
  );
}
