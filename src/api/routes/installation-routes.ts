import type { FastifyInstance } from 'fastify';
import { ErrorBody, IngestAccepted, InstallationBody } from '../../ingest/ingest-schemas.ts';
import { validateInstallation } from '../../ingest/request-validation.ts';
import type { ApiDeps } from '../api-deps.ts';
import { principalOf, requireKey } from '../auth.ts';
import { submitRecords } from '../ingest-submit.ts';

export function registerInstallationRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/installations',
    {
      preHandler: requireKey(deps.control, deps.limiter, 'any'),
      schema: {
        tags: ['installations'],
        summary: 'Register or update an app install or browser',
        description:
          'Public (pk_) or secret key. Links the installation to a profile when custom_id is given (creating the profile if needed). Answers 202 once durable.',
        security: [{ bearerAuth: [] }],
        body: InstallationBody,
        response: { 202: IngestAccepted, 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const record = validateInstallation(request.body, principal.project.id, deps.clock.now());
      return submitRecords(deps.cells, request, reply, [record]);
    },
  );
}
