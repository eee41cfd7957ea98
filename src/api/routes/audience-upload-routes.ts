import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { HeraldError } from '../../core/errors.ts';
import type { ImportMode } from '../../control/audience-store.ts';
import { ErrorBody } from '../../ingest/ingest-schemas.ts';
import { UploadFormatError, type UploadFormat } from '../../targeting/audience-upload-parser.ts';
import type { ApiDeps } from '../api-deps.ts';
import type { AudienceUploadJobs } from '../audience-upload-job.ts';
import { principalOf, requireKey } from '../auth.ts';
import { findAudience, ImportView, importView } from '../audience-views.ts';
import { intParam, invalidQuery } from '../query.ts';

const security = [{ bearerAuth: [] as string[] }];
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 415: ErrorBody, 503: ErrorBody };
const FORMATS: Record<string, UploadFormat> = { 'text/csv': 'csv', 'application/x-ndjson': 'ndjson' };
const MODES: readonly ImportMode[] = ['add', 'remove', 'replace'];

/**
 * Uploads of members (CSV or NDJSON, millions of rows). Registered in a scope of their own: only
 * here are those two content types accepted, as a raw stream that no body limit applies to.
 */
export function registerAudienceUploadRoutes(app: FastifyInstance, deps: ApiDeps, uploads: AudienceUploadJobs): void {
  const secret = requireKey(deps.control, deps.limiter, 'secret');
  app.addContentTypeParser(Object.keys(FORMATS), (_request, payload, done) => done(null, payload));

  app.post(
    '/v1/audiences/:id/uploads',
    {
      preHandler: secret,
      schema: {
        tags: ['audiences'], summary: 'Upload members (CSV or NDJSON)', security,
        description:
          'Content-Type text/csv (a header row naming a custom_id and/or install_id column) or application/x-ndjson ({"custom_id": …} or {"install_id": …} per line). ' +
          'The body is streamed and checked row by row. Answers 202 once it is read: state in_progress while it goes to the log, applied when readers see all of it, ' +
          'or failed with the line numbers of the first 100 bad rows — one bad row and nothing is applied.',
        params: Type.Object({ id: Type.String() }),
        querystring: Type.Object({ mode: Type.Union([Type.Literal('add'), Type.Literal('remove'), Type.Literal('replace')]) }),
        response: { 202: ImportView, ...errors },
      },
    },
    async (request, reply) => {
      const { project } = principalOf(request);
      const mode = (request.query as { mode?: unknown }).mode;
      if (!MODES.includes(mode as ImportMode)) throw invalidQuery('mode', 'must be add, remove or replace');
      const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const format = FORMATS[type];
      if (!format) throw new HeraldError('UNSUPPORTED_MEDIA_TYPE', { message: 'An upload must be text/csv or application/x-ndjson.' });
      const audience = await findAudience(deps, project.id, (request.params as { id: string }).id);
      try {
        const job = await uploads.receive(project.id, project.cellId, audience.id, mode as ImportMode, format, request.body as IncomingMessage);
        return reply.code(202).send(importView(job));
      } catch (error) {
        if (error instanceof UploadFormatError) {
          throw new HeraldError('VALIDATION_FAILED', { message: `The upload cannot be read: ${error.message}.`, details: [{ path: '/body', code: error.code, message: error.message }] });
        }
        throw error;
      }
    },
  );

  app.get(
    '/v1/audiences/:id/uploads',
    {
      preHandler: secret,
      schema: { tags: ['audiences'], summary: 'Recent uploads of an audience, newest first', security, params: Type.Object({ id: Type.String() }), response: { 200: Type.Object({ uploads: Type.Array(ImportView) }), ...errors } },
    },
    async (request) => {
      const { project } = principalOf(request);
      const audience = await findAudience(deps, project.id, (request.params as { id: string }).id);
      const list = await deps.control.audiences.listImports(project.id, audience.id, intParam(request.query, 'limit', 20, 1, 100));
      return { uploads: (await Promise.all(list.map((i) => uploads.resolve(i)))).map(importView) };
    },
  );

  app.get(
    '/v1/audiences/:id/uploads/:importId',
    {
      preHandler: secret,
      schema: { tags: ['audiences'], summary: 'The state and progress of an upload', security, params: Type.Object({ id: Type.String(), importId: Type.String() }), response: { 200: ImportView, ...errors } },
    },
    async (request) => {
      const { project } = principalOf(request);
      const { id, importId } = request.params as { id: string; importId: string };
      const audience = await findAudience(deps, project.id, id);
      const job = await deps.control.audiences.getImport(project.id, audience.id, importId);
      if (!job) throw new HeraldError('IMPORT_NOT_FOUND', { message: `No upload "${importId}" for this audience.` });
      return importView(await uploads.resolve(job));
    },
  );
}
