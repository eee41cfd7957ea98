import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import type { Problem } from '../../profiles/attribute-validation.ts';
import { checkNoNul } from '../../profiles/attribute-validation.ts';
import { ErrorBody, IngestAccepted } from '../../ingest/ingest-schemas.ts';
import type { EngagementRecord } from '../../ingest/records.ts';
import { eventTime } from '../../ingest/request-validation.ts';
import { compileShape } from '../../ingest/shape-check.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { submitRecords } from '../ingest-submit.ts';

const MAX_ITEMS = 1000;
const EngagementItem = Type.Object(
  {
    message_id: Type.String({ minLength: 1, maxLength: 100, description: 'The message’s id (`msg_…`), as the push payload, email headers or webhook carried it.' }),
    type: Type.Union([Type.Literal('opened'), Type.Literal('clicked')]),
    time: Type.Optional(Type.Union([Type.String(), Type.Number()], { description: 'When (ISO 8601 with a zone, or epoch ms); default now. At most 30 days ago.' })),
  },
  { additionalProperties: false },
);
const itemShape = compileShape(EngagementItem);

/**
 * Engagement (issue 4, message history): an app or site reports that a recipient opened or
 * clicked a message. Like every write it is acknowledged once in the cell's log (I1); the applier
 * records the earliest open and click on the message, where retargeting segments read them. A
 * message id of another project changes nothing (I10).
 */
export function registerEngagementRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/engagement',
    {
      preHandler: requireKey(deps.control, deps.limiter, 'any'),
      schema: {
        tags: ['messages'],
        summary: 'Report opens and clicks of messages',
        description: `Public (pk_) or secret key; 1 to ${MAX_ITEMS} items. A click counts as an open too. Answers 202 once durable.`,
        security: [{ bearerAuth: [] }],
        body: Type.Unknown(),
        response: { 202: IngestAccepted, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const { project } = principalOf(request);
      const now = deps.clock.now();
      const body = request.body;
      const problems: Problem[] = [];
      if (!Array.isArray(body) || body.length === 0 || body.length > MAX_ITEMS) {
        throw new HeraldError('VALIDATION_FAILED', { details: [{ path: '', code: 'INVALID_TYPE', message: `must be a list of 1 to ${MAX_ITEMS} engagement items` }] });
      }
      const records: EngagementRecord[] = [];
      body.forEach((item: unknown, i) => {
        const base = `/${i}`;
        const before = problems.length;
        itemShape.check(item, base, problems);
        checkNoNul(item, base, problems);
        if (problems.length > before) return;
        const e = item as { message_id: string; type: 'opened' | 'clicked'; time?: string | number };
        const time = eventTime(e.time, now, `${base}/time`, problems);
        records.push({ kind: 'message.engagement', project_id: project.id, message_id: e.message_id, type: e.type, time_ms: time, received_at: now });
      });
      if (problems.length > 0) throw new HeraldError('VALIDATION_FAILED', { details: problems });
      return submitRecords(deps.cells, request, reply, records);
    },
  );
}
