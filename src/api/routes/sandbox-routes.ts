import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { SandboxHandle } from '../../sandbox/sandbox.ts';
import { createSandboxSubscription } from '../../sandbox/webpush/webpush-sandbox-credentials.ts';
import { compileShape } from '../../ingest/shape-check.ts';
import type { Problem } from '../../profiles/attribute-validation.ts';
import type { ApiDeps } from '../api-deps.ts';
import { requireKey } from '../auth.ts';
import { intParam, stringParam } from '../query.ts';

const security = [{ bearerAuth: [] as string[] }];
const SandboxMessageView = Type.Object({
  id: Type.Integer(),
  kind: Type.String({ description: 'The provider the stand-in plays: apns, fcm, webpush, smtp, sms, webhook.' }),
  channel: Type.String(),
  to: Type.String({ description: 'The token, address, number or URL it was sent to.' }),
  received_at: Type.String(),
  headers: Type.Record(Type.String(), Type.String()),
  body: Type.Unknown({ description: 'The decoded payload: decrypted for web push, parsed for email.' }),
  raw: Type.Optional(Type.String({ description: 'Email: the raw MIME.' })),
});
const Rule = Type.Object(
  {
    kind: Type.String({ description: 'Which stand-in: apns, fcm, webpush, smtp, sms, webhook.' }),
    to: Type.Optional(Type.String({ description: 'Only for this recipient.' })),
    status: Type.Optional(Type.Integer({ minimum: 200, maximum: 599, description: 'Answer this status (SMTP: reply code).' })),
    reason: Type.Optional(Type.String({ maxLength: 200, description: 'The provider’s reason, e.g. "Unregistered", "UNREGISTERED", "21610".' })),
    retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
    hang: Type.Optional(Type.Boolean()),
    delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    times: Type.Optional(Type.Integer({ minimum: 1 })),
    forSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
    abovePerSecond: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
const ruleShape = compileShape(Rule);

/**
 * The sandbox, seen through Herald's API: what its stand-ins received, and rules that make them
 * misbehave. The sandbox is a development tool shared by every project wired to it.
 */
export function registerSandboxRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const anyKey = requireKey(deps.control, deps.limiter, 'any');
  const sandbox = (): SandboxHandle => {
    if (!deps.sandbox) throw new HeraldError('SANDBOX_NOT_RUNNING', { message: 'This Herald runs without a sandbox (--sandbox off).' });
    return deps.sandbox;
  };

  app.get(
    '/v1/sandbox/messages',
    {
      preHandler: secret,
      schema: {
        tags: ['sandbox'],
        summary: 'What the sandbox received, newest first',
        security,
        querystring: Type.Object({
          channel: Type.Optional(Type.String({ description: 'push, email, sms or webhook' })),
          kind: Type.Optional(Type.String({ description: 'apns, fcm, webpush, smtp, sms or webhook' })),
          to: Type.Optional(Type.String()),
          limit: Type.Optional(Type.String({ description: '1–1000, default 100' })),
        }),
        response: { 200: Type.Object({ messages: Type.Array(SandboxMessageView) }), 404: ErrorBody },
      },
    },
    async (request) => {
      const filter: Parameters<SandboxHandle['messages']>[0] = { limit: intParam(request.query, 'limit', 100, 1, 1000) };
      for (const key of ['channel', 'kind', 'to'] as const) {
        const value = stringParam(request.query, key);
        if (value !== undefined) filter[key] = value;
      }
      const messages = await sandbox().messages(filter);
      return {
        messages: messages.map((m) => ({ ...m, received_at: new Date(m.receivedAt).toISOString(), receivedAt: undefined })),
      };
    },
  );

  app.post(
    '/v1/sandbox/behaviors',
    {
      preHandler: secret,
      schema: { tags: ['sandbox'], summary: 'Make a stand-in misbehave (an error status, a hang, a delay, a rate limit)', security, body: Rule, response: { 201: Type.Record(Type.String(), Type.Unknown()), 400: ErrorBody, 404: ErrorBody } },
    },
    async (request, reply) => {
      const problems: Problem[] = [];
      if (!ruleShape.check(request.body, '', problems)) throw new HeraldError('VALIDATION_FAILED', { details: problems });
      return reply.code(201).send(await sandbox().addBehavior(request.body as Parameters<SandboxHandle['addBehavior']>[0]));
    },
  );

  app.delete(
    '/v1/sandbox/behaviors',
    { preHandler: secret, schema: { tags: ['sandbox'], summary: 'Make every stand-in behave again', security, response: { 204: Type.Null(), 404: ErrorBody } } },
    async (_request, reply) => {
      await sandbox().clearBehaviors();
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/sandbox/webpush/subscriptions',
    {
      preHandler: anyKey,
      schema: {
        tags: ['sandbox'],
        summary: 'A web push subscription from the sandbox’s pretend browser',
        description: 'Register it as an installation’s web_push to receive web pushes in the sandbox.',
        security,
        response: { 201: Type.Object({ endpoint: Type.String(), keys: Type.Object({ p256dh: Type.String(), auth: Type.String() }) }), 404: ErrorBody },
      },
    },
    async (_request, reply) => {
      const endpoint = sandbox().endpoints.webpush;
      if (!endpoint) throw new HeraldError('SANDBOX_NOT_RUNNING', { message: 'The sandbox has no web push stand-in.' });
      const subscription = await createSandboxSubscription(endpoint);
      return reply.code(201).send({ endpoint: subscription.endpoint, keys: subscription.keys });
    },
  );
}
