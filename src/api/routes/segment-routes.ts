import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import { validateProfileUpdates } from '../../ingest/request-validation.ts';
import { mapSegmentMessages, segmentPath } from '../../ingest/segment-mapping.ts';
import type { IngestRecord } from '../../ingest/records.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { appendRecords } from '../ingest-submit.ts';

const Message = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A Segment-spec message (identify, track, page, screen; group and alias are ignored).',
});
const SegmentOk = Type.Object({
  success: Type.Boolean(),
  accepted: Type.Integer(),
  ignored: Type.Integer(),
  ingest_id: Type.Union([Type.String(), Type.Null()]),
});

/**
 * Segment-compatible ingestion: point an analytics library at `<herald>/segment` (path `/v1/batch`)
 * with the project's secret key as its write key.
 */
export function registerSegmentRoutes(app: FastifyInstance, deps: ApiDeps): void {
  // Browser Segment libraries send JSON as text/plain (to avoid CORS preflights); accept it here only.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new HeraldError('MALFORMED_JSON'), undefined);
    }
  });
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const schema = (summary: string, body: unknown): FastifySchema => ({
    tags: ['segment'],
    summary,
    security: [{ basicAuth: [] as string[] }, { bearerAuth: [] as string[] }],
    body,
    response: { 200: SegmentOk, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody, 503: ErrorBody },
  });

  const handle = async (request: FastifyRequest, reply: FastifyReply, messages: unknown[]) => {
    const principal = principalOf(request);
    const mapped = mapSegmentMessages(messages);
    const details = [...mapped.problems];
    let records: IngestRecord[] = [];
    try {
      records = validateProfileUpdates(
        mapped.items.map((m) => m.item),
        principal.project.id,
        deps.clock.now(),
        { allowEmpty: true },
      );
    } catch (error) {
      if (!(error instanceof HeraldError) || !error.details) throw error;
      // Report problems against the caller's message indexes and fields, not our mapped items'.
      for (const d of error.details) {
        const source = d.index === undefined ? undefined : mapped.items[d.index];
        details.push(source ? { ...d, index: source.index, path: segmentPath(source.call, d.path) } : d);
      }
    }
    if (details.length > 0) {
      details.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      throw new HeraldError('VALIDATION_FAILED', { details });
    }
    if (records.length === 0) return reply.send({ success: true, accepted: 0, ignored: mapped.ignored, ingest_id: null });
    const result = await appendRecords(deps.cells, request, records);
    if (result.replayed) reply.header('idempotent-replayed', 'true');
    return reply.send({ success: true, accepted: result.accepted, ignored: mapped.ignored, ingest_id: result.ingestId });
  };

  app.post('/segment/v1/batch', { preHandler: secret, schema: schema('Segment batch', Type.Object({ batch: Type.Array(Message) })) }, (request, reply) => {
    const body = request.body as { batch?: unknown } | null;
    if (!body || !Array.isArray(body.batch)) {
      throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '/batch', code: 'REQUIRED', message: 'must be an array of messages' }] });
    }
    return handle(request, reply, body.batch);
  });
  for (const type of ['identify', 'track'] as const) {
    app.post(`/segment/v1/${type}`, { preHandler: secret, schema: schema(`Segment ${type}`, Message) }, (request, reply) => {
      const body = request.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '', code: 'INVALID_TYPE', message: 'must be a JSON object' }] });
      }
      return handle(request, reply, [{ ...body, type }]);
    });
  }
}
