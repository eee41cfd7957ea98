import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { SendBody } from '../../delivery/send-schemas.ts';
import { validateSend } from '../../delivery/send-validation.ts';
import { type TemplateEngine } from '../../delivery/templates/template-engine.ts';
import { MESSAGE_STATES } from '../../storage/outbox-port.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { messageView, MessageView } from '../delivery-views.ts';
import { appendRecords, waitForQuery } from '../ingest-submit.ts';
import { intParam, invalidQuery, stringParam } from '../query.ts';

const security = [{ bearerAuth: [] as string[] }];
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 429: ErrorBody, 503: ErrorBody };
const Counts = Type.Object(Object.fromEntries(MESSAGE_STATES.map((s) => [s, Type.Integer()])));

export function registerSendRoutes(app: FastifyInstance, deps: ApiDeps, engine: TemplateEngine): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');

  app.post(
    '/v1/send',
    {
      preHandler: secret,
      schema: {
        tags: ['delivery'],
        summary: 'Send a message to users on one channel',
        description:
          'Answers 201 once the send is durably accepted; each recipient then gets its own message in the outbox (queued, or suppressed/failed with a reason). Accepts Idempotency-Key.',
        security,
        body: SendBody,
        response: { 201: Type.Object({ send_id: Type.String(), ingest_id: Type.String() }), 409: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const record = await validateSend(request.body, principal.project.id, deps.control, engine, deps.clock.now());
      const result = await appendRecords(deps.cells, request, [record], { send_id: record.send_id });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send({ send_id: String(result.meta.send_id), ingest_id: result.ingestId });
    },
  );

  app.get(
    '/v1/sends/:send_id',
    {
      preHandler: secret,
      schema: {
        tags: ['delivery'],
        summary: 'What happened to a send: counts per state, and each recipient’s outcome',
        security,
        params: Type.Object({ send_id: Type.String() }),
        querystring: Type.Object({
          wait_for: Type.Optional(Type.String({ description: 'The ingest_id POST /v1/send answered: wait (≤ 5 s) until it is materialised.' })),
          limit: Type.Optional(Type.String()),
          cursor: Type.Optional(Type.String()),
        }),
        response: {
          200: Type.Object({
            send_id: Type.String(),
            channel: Type.String(),
            category: Type.String(),
            created_at: Type.String(),
            summary: Type.Record(Type.String(), Type.Unknown()),
            targeted: Type.Integer({ description: 'Messages materialised; always the sum of the counts.' }),
            counts: Counts,
            messages: Type.Array(MessageView),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { send_id: sendId } = request.params as { send_id: string };
      const runtime = deps.cells.get(principal.project.cellId);
      await waitForQuery(runtime, request.query);
      const limit = intParam(request.query, 'limit', 100, 1, 1000);
      const cursor = stringParam(request.query, 'cursor');
      const report = await runtime.read((store) => store.getSend(principal.project.id, sendId));
      if (!report) throw new HeraldError('SEND_NOT_FOUND', { message: `No send "${sendId}" (yet): pass ?wait_for=<ingest_id> right after sending.` });
      const page = await runtime.read((store) => store.listMessages(principal.project.id, { sendId, limit, cursor }));
      return {
        send_id: report.send.id,
        channel: report.send.channel,
        category: report.send.category,
        created_at: new Date(report.send.createdAt).toISOString(),
        summary: report.send.summary,
        targeted: Object.values(report.counts).reduce((a, b) => a + b, 0),
        counts: report.counts,
        messages: page.messages.map(({ history: _history, ...m }) => messageView(m)),
        next_cursor: page.next,
      };
    },
  );

  app.get(
    '/v1/messages',
    {
      preHandler: secret,
      schema: {
        tags: ['delivery'],
        summary: 'Every message of a user (or a send), newest first, with its state history',
        description: 'Answers "why didn’t Ana get it?": each message says its state and why, and lists every step it went through.',
        security,
        querystring: Type.Object({
          custom_id: Type.Optional(Type.String()),
          send_id: Type.Optional(Type.String()),
          limit: Type.Optional(Type.String()),
          cursor: Type.Optional(Type.String()),
        }),
        response: { 200: Type.Object({ messages: Type.Array(MessageView), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const customId = stringParam(request.query, 'custom_id');
      const sendId = stringParam(request.query, 'send_id');
      if (customId === undefined && sendId === undefined) throw invalidQuery('custom_id', 'give custom_id or send_id');
      const limit = intParam(request.query, 'limit', 50, 1, 500);
      const cursor = stringParam(request.query, 'cursor');
      const runtime = deps.cells.get(principal.project.cellId);
      const page = await runtime.read((store) =>
        store.listMessages(principal.project.id, { ...(customId !== undefined ? { customId } : {}), ...(sendId !== undefined ? { sendId } : {}), limit, cursor }),
      );
      return { messages: page.messages.map(messageView), next_cursor: page.next };
    },
  );
}
