import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { timeOrderedId } from '../../core/ids.ts';
import type { ProjectRecord, SegmentRecord } from '../../control/control-store.ts';
import type { Problem } from '../../profiles/attribute-validation.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { Segment } from '../../targeting/segment-model.ts';
import { checkSegment } from '../../targeting/segment-validation.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { segmentContextOf } from '../segment-context.ts';

const security = [{ bearerAuth: [] as string[] }];
const Warning = Type.Object({ path: Type.String(), code: Type.String(), message: Type.String() });
const SegmentView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  segment: Type.Unknown({ description: 'The expression tree (see the README: segment language).' }),
  created_at: Type.String(),
  updated_at: Type.String(),
  warnings: Type.Optional(Type.Array(Warning, { description: 'Names not seen in this project’s data yet (events, attributes).' })),
});
const SegmentBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), segment: Type.Unknown() },
  { additionalProperties: false, description: 'A name unique in the project and the segment tree.' },
);
const EstimateBody = Type.Object(
  {
    segment: Type.Optional(Type.Unknown({ description: 'An inline segment tree.' })),
    segment_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'A saved segment’s id or name.' })),
  },
  { additionalProperties: false },
);
const Count = Type.Integer({ minimum: 0 });
const EstimateView = Type.Object({
  total: Count,
  reachable: Type.Object({
    push: Type.Object({ any: Count, ios: Count, android: Count, web: Count }),
    email: Count,
    sms: Count,
  }),
  evaluated_at: Type.String({ description: 'The instant relative windows were measured from.' }),
  took_ms: Type.Integer(),
  warnings: Type.Optional(Type.Array(Warning)),
});
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };
export const NAME = /^[\p{L}\p{N}][\p{L}\p{N} _.\-:]{0,99}$/u;

const view = (s: SegmentRecord, warnings?: Problem[]) => ({
  id: s.id,
  name: s.name,
  segment: s.definition,
  created_at: new Date(s.createdAt).toISOString(),
  updated_at: new Date(s.updatedAt).toISOString(),
  ...(warnings ? { warnings } : {}),
});

/** Does `tree` refer to one of `refs` — a saved segment's id or name, or an audience's name — through `{[kind]: ref}` nodes? */
export function refersTo(tree: unknown, kind: 'segment' | 'audience', refs: ReadonlySet<string>, depth = 0): boolean {
  if (typeof tree !== 'object' || tree === null || depth > 40) return false;
  const node = tree as Record<string, unknown>;
  const ref = node[kind];
  if (typeof ref === 'string' && refs.has(ref)) return true;
  for (const key of ['and', 'or'] as const) if (Array.isArray(node[key]) && (node[key] as unknown[]).some((c) => refersTo(c, kind, refs, depth + 1))) return true;
  return 'not' in node && refersTo(node.not, kind, refs, depth + 1);
}

/**
 * Saved segments (issue 4): targeting expressions checked against the project's data when saved
 * — operators against attribute types, windows, depth, references and cycles — with warnings for
 * events and attributes not seen yet.
 */
export function registerSavedSegmentRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');

  const find = async (projectId: string, idOrName: string): Promise<SegmentRecord> => {
    const s = await deps.control.config.getSegment(projectId, idOrName);
    if (!s) throw new HeraldError('SEGMENT_NOT_FOUND', { message: `No segment "${idOrName}" in this project.` });
    return s;
  };

  const contextOf = (project: ProjectRecord, selfId?: string) => segmentContextOf(deps, project, selfId);

  /** Checks a body against the project's catalog and saved segments; throws 400 with every problem. */
  const checked = async (project: ProjectRecord, body: unknown, selfId?: string): Promise<{ name: string; segment: Segment; warnings: Problem[] }> => {
    const problems: Problem[] = [];
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '', code: 'INVALID_TYPE', message: 'the body must be {"name": …, "segment": …}' }] });
    }
    const b = body as Record<string, unknown>;
    for (const key of Object.keys(b)) if (key !== 'name' && key !== 'segment') problems.push({ path: `/${key}`, code: 'UNKNOWN_FIELD', message: 'is not a field of a segment (name, segment)' });
    if (typeof b.name !== 'string' || !NAME.test(b.name)) {
      problems.push({ path: '/name', code: 'INVALID_VALUE', message: 'must be 1–100 letters, digits, spaces or _ . - :, starting with a letter or digit' });
    }
    if (!('segment' in b)) problems.push({ path: '/segment', code: 'REQUIRED', message: 'is required' });
    const { ctx } = await contextOf(project, selfId);
    const result = 'segment' in b ? checkSegment(b.segment, ctx, '/segment') : undefined;
    if (result && !result.ok) problems.push(...result.problems);
    if (problems.length > 0 || !result?.ok) throw new HeraldError('VALIDATION_FAILED', { details: problems });
    return { name: b.name as string, segment: result.segment, warnings: result.warnings };
  };

  app.post(
    '/v1/segments/estimate',
    {
      preHandler: secret,
      schema: {
        tags: ['segments'],
        summary: 'Estimate a segment: how many profiles, and how many each channel reaches',
        description:
          'Give an inline tree (`segment`) or a saved segment (`segment_id`, its id or name). Evaluated now over the project’s data; reachability counts profiles with a push-enabled installation (per platform), a subscribed, unsuppressed email address, or a consented, unsuppressed phone number.',
        security,
        body: EstimateBody,
        response: { 200: EstimateView, ...errors },
      },
    },
    async (request) => {
      const { project } = principalOf(request);
      const body = request.body as { segment?: unknown; segment_id?: string };
      if ((body.segment === undefined) === (body.segment_id === undefined)) {
        throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '', code: 'REQUIRED', message: 'give exactly one of "segment" (a tree) or "segment_id" (a saved segment’s id or name)' }] });
      }
      const { ctx, resolve, audience } = await contextOf(project);
      let segment: Segment;
      let warnings: Problem[] = [];
      if (body.segment_id !== undefined) segment = (await find(project.id, body.segment_id)).definition as Segment;
      else {
        const result = checkSegment(body.segment, ctx, '/segment');
        if (!result.ok) throw new HeraldError('VALIDATION_FAILED', { details: result.problems });
        segment = result.segment;
        warnings = result.warnings;
      }
      const now = deps.clock.now();
      const started = performance.now();
      const estimate = await deps.cells.get(project.cellId).read((store) => store.estimateSegment(project.id, segment, { nowMs: now, resolveSegment: resolve, resolveAudience: audience }));
      return {
        total: estimate.total,
        reachable: estimate.reachable,
        evaluated_at: new Date(now).toISOString(),
        took_ms: Math.round(performance.now() - started),
        ...(warnings.length ? { warnings } : {}),
      };
    },
  );

  app.post(
    '/v1/segments',
    {
      preHandler: secret,
      schema: {
        tags: ['segments'],
        summary: 'Save a segment',
        description: 'The tree is checked against this project’s data: operators against attribute types, windows, nesting (≤ 32), references and cycles. Events and attributes not seen yet are warnings.',
        security,
        body: SegmentBody,
        response: { 201: SegmentView, ...errors },
      },
    },
    async (request, reply) => {
      const { project } = principalOf(request);
      const { name, segment, warnings } = await checked(project, request.body);
      const now = deps.clock.now();
      const record: SegmentRecord = { id: timeOrderedId('seg', now), projectId: project.id, name, definition: segment, createdAt: now, updatedAt: now };
      await deps.control.config.putSegment(record);
      return reply.code(201).send(view(record, warnings));
    },
  );

  app.get(
    '/v1/segments',
    { preHandler: secret, schema: { tags: ['segments'], summary: 'List saved segments', security, response: { 200: Type.Object({ segments: Type.Array(SegmentView) }), ...errors } } },
    async (request) => ({ segments: (await deps.control.config.listSegments(principalOf(request).project.id)).map((s) => view(s)) }),
  );

  app.get(
    '/v1/segments/:id',
    { preHandler: secret, schema: { tags: ['segments'], summary: 'Read a saved segment (by id or name)', security, params: Type.Object({ id: Type.String() }), response: { 200: SegmentView, ...errors } } },
    async (request) => view(await find(principalOf(request).project.id, (request.params as { id: string }).id)),
  );

  app.put(
    '/v1/segments/:id',
    {
      preHandler: secret,
      schema: { tags: ['segments'], summary: 'Replace a saved segment', security, params: Type.Object({ id: Type.String() }), body: SegmentBody, response: { 200: SegmentView, ...errors } },
    },
    async (request) => {
      const { project } = principalOf(request);
      const existing = await find(project.id, (request.params as { id: string }).id);
      const { name, segment, warnings } = await checked(project, request.body, existing.id);
      const record: SegmentRecord = { ...existing, name, definition: segment, updatedAt: deps.clock.now() };
      await deps.control.config.putSegment(record);
      return view(record, warnings);
    },
  );

  app.delete(
    '/v1/segments/:id',
    { preHandler: secret, schema: { tags: ['segments'], summary: 'Delete a saved segment', security, params: Type.Object({ id: Type.String() }), response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { project } = principalOf(request);
      const existing = await find(project.id, (request.params as { id: string }).id);
      const refs = new Set([existing.id, existing.name]);
      const users = (await deps.control.config.listSegments(project.id)).filter((s) => s.id !== existing.id && refersTo(s.definition, 'segment', refs));
      if (users.length > 0) {
        throw new HeraldError('SEGMENT_IN_USE', { message: `Segment "${existing.name}" is used by ${users.map((u) => `"${u.name}"`).join(', ')}; change those first.` });
      }
      await deps.control.config.deleteSegment(project.id, existing.id);
      return reply.code(204).send();
    },
  );
}
