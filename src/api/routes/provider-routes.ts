import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import type { ProviderLimitOverrides } from '../../control/control-store.ts';
import { effectiveLimits } from '../../delivery/configured-providers.ts';
import { PROVIDERS, providerKind } from '../../delivery/providers/registry.ts';
import { compileShape } from '../../ingest/shape-check.ts';
import type { Problem } from '../../profiles/attribute-validation.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';

const security = [{ bearerAuth: [] as string[] }];
const shapes = new Map(PROVIDERS.map((p) => [p.kind, compileShape(p.credentialsSchema)]));
const ProviderView = Type.Object({
  kind: Type.String(),
  label: Type.String(),
  channel: Type.String(),
  platforms: Type.Union([Type.Array(Type.String()), Type.Null()]),
  configured: Type.Boolean(),
  sandbox: Type.Boolean({ description: 'Configured by Herald to deliver to its sandbox.' }),
  disabled_reason: Type.Union([Type.String(), Type.Null()]),
  limits: Type.Object(
    { rate_per_second: Type.Number(), max_concurrency: Type.Integer() },
    { description: 'Flow control in effect: the documented defaults, or what this project set.' },
  ),
  default_limits: Type.Object({ rate_per_second: Type.Number(), max_concurrency: Type.Integer() }),
  updated_at: Type.Union([Type.String(), Type.Null()]),
});
const LimitsBody = Type.Object(
  {
    rate_per_second: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Messages per second for this project (token bucket).' })),
    max_concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Requests in flight at most (the adaptive limit grows up to this).' })),
  },
  { additionalProperties: false, description: "Overrides of the provider's documented quotas; omit to keep the defaults." },
);
const PutBody = Type.Object({ credentials: Type.Record(Type.String(), Type.Unknown()), limits: Type.Optional(LimitsBody) }, { additionalProperties: false });
const putShape = compileShape(PutBody);
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/**
 * Provider configuration, one per kind and project. Credentials are validated when saved, sealed
 * at rest and never returned (I10).
 */
export function registerProviderRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const views = (projectId: string) => {
    const configured = deps.control.providers(projectId);
    return PROVIDERS.map((p) => {
      const record = configured.find((c) => c.kind === p.kind);
      const limits = effectiveLimits(p.limits, record?.limits ?? null);
      return {
        kind: p.kind,
        label: p.label,
        channel: p.channel,
        platforms: p.platforms ? [...p.platforms] : null,
        configured: record !== undefined,
        sandbox: record?.sandbox ?? false,
        disabled_reason: record?.disabledReason ?? null,
        limits: { rate_per_second: limits.ratePerSecond, max_concurrency: limits.maxConcurrency },
        default_limits: { rate_per_second: p.limits.ratePerSecond, max_concurrency: p.limits.maxConcurrency },
        updated_at: record ? new Date(record.updatedAt).toISOString() : null,
      };
    });
  };
  const definition = (kind: string) => {
    const def = providerKind(kind);
    if (!def) throw new HeraldError('UNKNOWN_PROVIDER', { message: `No provider kind "${kind}"; kinds are ${PROVIDERS.map((p) => p.kind).join(', ')}.` });
    return def;
  };

  app.get(
    '/v1/providers',
    { preHandler: secret, schema: { tags: ['providers'], summary: 'Every provider kind and whether this project configured it', security, response: { 200: Type.Object({ providers: Type.Array(ProviderView) }), ...errors } } },
    (request) => ({ providers: views(principalOf(request).project.id) }),
  );

  app.put(
    '/v1/providers/:kind',
    {
      preHandler: secret,
      schema: {
        tags: ['providers'],
        summary: 'Configure (or replace) the provider of one kind',
        description: `Kinds: ${PROVIDERS.map((p) => `${p.kind} (${p.channel})`).join(', ')}. The credentials are checked now; nothing is saved if they are wrong.`,
        security,
        params: Type.Object({ kind: Type.String() }),
        body: PutBody,
        response: { 200: ProviderView, ...errors },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const def = definition((request.params as { kind: string }).kind);
      const body = request.body as { credentials?: unknown; limits?: { rate_per_second?: number; max_concurrency?: number } } | null;
      const problems: Problem[] = [];
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        problems.push({ path: '', code: 'INVALID_TYPE', message: 'the body must be a JSON object with "credentials"' });
      } else if (putShape.check(body, '', problems) && shapes.get(def.kind)!.check(body.credentials, '/credentials', problems)) {
        const checked = def.validate(body.credentials);
        if (checked.ok) {
          const limits: ProviderLimitOverrides = {};
          if (body.limits?.rate_per_second !== undefined) limits.ratePerSecond = body.limits.rate_per_second;
          if (body.limits?.max_concurrency !== undefined) limits.maxConcurrency = body.limits.max_concurrency;
          await deps.control.setProvider(principal.project.id, def.kind, checked.credentials, { sandbox: false, limits });
          return views(principal.project.id).find((v) => v.kind === def.kind)!;
        }
        problems.push(...checked.problems.map((p) => ({ ...p, path: `/credentials${p.path}` })));
      }
      throw new HeraldError('VALIDATION_FAILED', { details: problems });
    },
  );

  app.delete(
    '/v1/providers/:kind',
    { preHandler: secret, schema: { tags: ['providers'], summary: 'Remove the provider of one kind', security, params: Type.Object({ kind: Type.String() }), response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const principal = principalOf(request);
      const def = definition((request.params as { kind: string }).kind);
      if (!(await deps.control.deleteProvider(principal.project.id, def.kind))) {
        throw new HeraldError('NOT_FOUND', { message: `No ${def.kind} provider is configured.` });
      }
      return reply.code(204).send();
    },
  );
}
