import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomBase62 } from '../core/ids.ts';
import type { ApiDeps } from './api-deps.ts';
import { installErrorHandling } from './error-handler.ts';
import { registerHealthRoutes } from './routes/health-routes.ts';
import { registerInstallationRoutes } from './routes/installation-routes.ts';
import { registerProfileRoutes } from './routes/profile-routes.ts';
import { registerSegmentRoutes } from './routes/segment-routes.ts';
import { registerSendRoutes } from './routes/send-routes.ts';
import { registerTemplateRoutes } from './routes/template-routes.ts';
import { registerEngagementRoutes } from './routes/engagement-routes.ts';
import { registerSavedSegmentRoutes } from './routes/saved-segment-routes.ts';
import { registerProviderRoutes } from './routes/provider-routes.ts';
import { registerSandboxRoutes } from './routes/sandbox-routes.ts';
import { registerCallbackRoutes } from './routes/callback-routes.ts';
import { registerAudienceRoutes } from './routes/audience-routes.ts';
import { registerCampaignRoutes } from './routes/campaign-routes.ts';
import { registerAutomationRoutes } from './routes/automation-routes.ts';
import { registerAudienceUploadRoutes } from './routes/audience-upload-routes.ts';
import { AudienceUploadJobs } from './audience-upload-job.ts';
import { TemplateEngine } from '../delivery/templates/template-engine.ts';

export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Request ids: a random per-process prefix and a counter — unique, and cheap on the hot path. */
function requestIds(): () => string {
  const prefix = `req_${randomBase62(8)}`;
  let n = 0;
  return () => `${prefix}${(n++).toString(36)}`;
}

export interface ServerOptions {
  logger: FastifyBaseLogger;
}

/**
 * The HTTP edge: authentication, validation, the durable append, reads. Route schemas document
 * the API (OpenAPI at /openapi.json, docs at /docs); bodies are checked by the ingest validators
 * built on those same schemas, so every problem is reported at once with its item index and path.
 */
export async function buildServer(deps: ApiDeps, options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: BODY_LIMIT_BYTES,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestIds(),
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { strict: false } },
  });
  // Bodies and parameters are validated by Herald's own validators (one error format, all problems at once).
  app.setValidatorCompiler(() => () => true);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  installErrorHandling(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Herald API',
        version: deps.version,
        description:
          'Herald ingests profiles, installations and events, durably (a 2xx means it is on disk), and reaches users on every channel.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'A project key: sk_… (secret) or pk_… (public).' },
          basicAuth: { type: 'http', scheme: 'basic', description: 'Segment-style: the secret key as the user name.' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  registerHealthRoutes(app, deps);
  registerProfileRoutes(app, deps);
  registerInstallationRoutes(app, deps);
  // Herald's API is JSON only: a JSON body sent as text/plain is refused with 415, not misread.
  app.removeContentTypeParser('text/plain');
  await app.register(async (scope) => registerSegmentRoutes(scope, deps));
  const templates = new TemplateEngine();
  registerSendRoutes(app, deps, templates);
  registerTemplateRoutes(app, deps, templates);
  registerSavedSegmentRoutes(app, deps);
  registerCampaignRoutes(app, deps, templates);
  registerAutomationRoutes(app, deps, templates);
  registerEngagementRoutes(app, deps);
  const uploads = new AudienceUploadJobs({ control: deps.control, cells: deps.cells, clock: deps.clock, logger: app.log });
  app.addHook('onClose', async () => uploads.close());
  registerAudienceRoutes(app, deps, uploads);
  await app.register(async (scope) => registerAudienceUploadRoutes(scope, deps, uploads));
  registerProviderRoutes(app, deps);
  registerSandboxRoutes(app, deps);
  await registerCallbackRoutes(app, deps);

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  return app;
}
