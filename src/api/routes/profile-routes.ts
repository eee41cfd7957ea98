import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { IngestAccepted, ErrorBody, ProfileUpdateBody } from '../../ingest/ingest-schemas.ts';
import { validateProfileUpdates } from '../../ingest/request-validation.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { parseIngestId, submitRecords } from '../ingest-submit.ts';
import { decodeCursor, encodeCursor, EventPageView, eventView, profileView, ProfileView } from '../profile-views.ts';
import { intParam, invalidQuery, stringParam } from '../query.ts';

const WAIT_FOR_MAX_MS = 5_000;
const CustomIdParam = Type.Object({ custom_id: Type.String({ description: 'The profile’s custom_id (URL-encoded).' }) });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 429: ErrorBody, 503: ErrorBody };
const security = [{ bearerAuth: [] }];

export function registerProfileRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');

  app.post(
    '/v1/profiles/update',
    {
      preHandler: secret,
      schema: {
        tags: ['profiles'],
        summary: 'Create or update profiles and track their events',
        description:
          'Up to 1,000 items. Answers 202 only once every item is durably in the ingest log; any invalid item rejects the whole request (nothing is accepted). Accepts Idempotency-Key.',
        security,
        body: ProfileUpdateBody,
        response: { 202: IngestAccepted, 409: ErrorBody, 413: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const records = validateProfileUpdates(request.body, principal.project.id, deps.clock.now());
      return submitRecords(deps.cells, request, reply, records);
    },
  );

  app.get(
    '/v1/profiles/:custom_id',
    {
      preHandler: secret,
      schema: {
        tags: ['profiles'],
        summary: 'Read a profile as applied',
        description:
          'With ?wait_for=<ingest_id> the answer waits (at most 5 s) until that ingest is applied, to read your own writes.',
        security,
        params: CustomIdParam,
        querystring: Type.Object({
          wait_for: Type.Optional(Type.String({ description: 'An ingest_id from a write of this project.' })),
          events_limit: Type.Optional(Type.String({ description: 'How many recent events to include (0–500, default 50).' })),
        }),
        response: { 200: ProfileView, 404: ErrorBody, ...errors },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { custom_id: customId } = request.params as { custom_id: string };
      const eventsLimit = intParam(request.query, 'events_limit', 50, 0, 500);
      const waitFor = stringParam(request.query, 'wait_for');
      const runtime = deps.cells.get(principal.project.cellId);
      let consistency: { wait_for: string; applied: boolean } | undefined;
      if (waitFor !== undefined) {
        const parsed = parseIngestId(waitFor);
        if (!parsed || parsed.cellId !== runtime.cell.id) throw invalidQuery('wait_for', 'is not an ingest_id of this project');
        consistency = { wait_for: waitFor, applied: await runtime.waitForApplied(parsed.seq, WAIT_FOR_MAX_MS) };
      }
      const detail = await runtime.read((store) => store.getProfile(principal.project.id, customId, { eventsLimit }));
      if (!detail) throw new HeraldError('PROFILE_NOT_FOUND', { message: `No profile has custom_id "${customId}".` });
      return { ...profileView(detail), ...(consistency ? { consistency } : {}) };
    },
  );

  app.get(
    '/v1/profiles/:custom_id/events',
    {
      preHandler: secret,
      schema: {
        tags: ['profiles'],
        summary: "List a profile's events, most recent first",
        security,
        params: CustomIdParam,
        querystring: Type.Object({
          limit: Type.Optional(Type.String({ description: 'Page size, 1–1000 (default 100).' })),
          cursor: Type.Optional(Type.String({ description: 'next_cursor from the previous page.' })),
        }),
        response: { 200: EventPageView, 404: ErrorBody, ...errors },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { custom_id: customId } = request.params as { custom_id: string };
      const limit = intParam(request.query, 'limit', 100, 1, 1000);
      const cursor = stringParam(request.query, 'cursor');
      const before = cursor === undefined ? undefined : decodeCursor(cursor);
      if (before === null) throw invalidQuery('cursor', 'is not a cursor returned by this endpoint');
      const runtime = deps.cells.get(principal.project.cellId);
      const page = await runtime.read((store) => store.listEvents(principal.project.id, customId, { limit, before }));
      if (!page) throw new HeraldError('PROFILE_NOT_FOUND', { message: `No profile has custom_id "${customId}".` });
      return { events: page.events.map(eventView), next_cursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.delete(
    '/v1/profiles/:custom_id',
    {
      preHandler: secret,
      schema: {
        tags: ['profiles'],
        summary: 'Erase a profile, its installations and its events',
        description: 'The erasure goes through the ingest log, so it is ordered with the writes before it. Answers 202 once durable.',
        security,
        params: CustomIdParam,
        response: { 202: IngestAccepted, ...errors },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { custom_id: customId } = request.params as { custom_id: string };
      if (customId.length === 0 || customId.length > 255) {
        throw new HeraldError('VALIDATION_FAILED', {
          details: [{ path: '/params/custom_id', code: 'INVALID_LENGTH', message: 'must be 1 to 255 characters' }],
        });
      }
      return submitRecords(deps.cells, request, reply, [
        { kind: 'profile.delete', project_id: principal.project.id, custom_id: customId, received_at: deps.clock.now() },
      ]);
    },
  );
}
