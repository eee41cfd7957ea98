import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import { timeOrderedId } from '../../core/ids.ts';
import type { TemplateRecord } from '../../control/control-store.ts';
import { TemplateBody } from '../../delivery/send-schemas.ts';
import { validateTemplate } from '../../delivery/send-validation.ts';
import type { TemplateEngine } from '../../delivery/templates/template-engine.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';

const security = [{ bearerAuth: [] as string[] }];
const TemplateView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  channel: Type.String(),
  variants: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown())),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

const view = (t: TemplateRecord) => ({
  id: t.id,
  name: t.name,
  channel: t.channel,
  variants: t.variants,
  created_at: new Date(t.createdAt).toISOString(),
  updated_at: new Date(t.updatedAt).toISOString(),
});

/** Templates: Liquid content per channel with language variants, checked when saved. */
export function registerTemplateRoutes(app: FastifyInstance, deps: ApiDeps, engine: TemplateEngine): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  const find = async (projectId: string, id: string): Promise<TemplateRecord> => {
    const t = await deps.control.config.getTemplate(projectId, id);
    if (!t) throw new HeraldError('TEMPLATE_NOT_FOUND', { message: `No template "${id}" in this project.` });
    return t;
  };

  app.post(
    '/v1/templates',
    {
      preHandler: secret,
      schema: {
        tags: ['templates'],
        summary: 'Create a template',
        description: 'Every string is Liquid; syntax errors are reported with the field, line and column. A "default" variant is required.',
        security,
        body: TemplateBody,
        response: { 201: TemplateView, ...errors },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const t = validateTemplate(request.body, engine);
      const now = deps.clock.now();
      const record: TemplateRecord = { id: timeOrderedId('tpl', now), projectId: principal.project.id, ...t, createdAt: now, updatedAt: now };
      await deps.control.config.putTemplate(record);
      return reply.code(201).send(view(record));
    },
  );

  app.get(
    '/v1/templates',
    { preHandler: secret, schema: { tags: ['templates'], summary: 'List templates', security, response: { 200: Type.Object({ templates: Type.Array(TemplateView) }), ...errors } } },
    async (request) => ({ templates: (await deps.control.config.listTemplates(principalOf(request).project.id)).map(view) }),
  );

  app.get(
    '/v1/templates/:id',
    { preHandler: secret, schema: { tags: ['templates'], summary: 'Read a template (by id or name)', security, params: Type.Object({ id: Type.String() }), response: { 200: TemplateView, ...errors } } },
    async (request) => view(await find(principalOf(request).project.id, (request.params as { id: string }).id)),
  );

  app.put(
    '/v1/templates/:id',
    {
      preHandler: secret,
      schema: { tags: ['templates'], summary: 'Replace a template', security, params: Type.Object({ id: Type.String() }), body: TemplateBody, response: { 200: TemplateView, ...errors } },
    },
    async (request) => {
      const principal = principalOf(request);
      const existing = await find(principal.project.id, (request.params as { id: string }).id);
      const t = validateTemplate(request.body, engine);
      const record: TemplateRecord = { ...existing, ...t, updatedAt: deps.clock.now() };
      await deps.control.config.putTemplate(record);
      return view(record);
    },
  );

  app.delete(
    '/v1/templates/:id',
    { preHandler: secret, schema: { tags: ['templates'], summary: 'Delete a template', security, params: Type.Object({ id: Type.String() }), response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const principal = principalOf(request);
      const existing = await find(principal.project.id, (request.params as { id: string }).id);
      await deps.control.config.deleteTemplate(principal.project.id, existing.id);
      return reply.code(204).send();
    },
  );
}
