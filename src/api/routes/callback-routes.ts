import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { verifyTwilioSignature } from '../../delivery/providers/sms/sms-callback-signature.ts';
import type { SmsCredentials } from '../../delivery/providers/sms/sms-credentials.ts';
import { readUnsubscribeToken } from '../../delivery/unsubscribe.ts';
import { encodeRecord } from '../../ingest/records.ts';
import type { ApiDeps } from '../api-deps.ts';

const form = (body: unknown): Record<string, string> => (body && typeof body === 'object' ? (body as Record<string, string>) : {});

/**
 * What recipients and providers call back: RFC 8058 one-click unsubscribe links, and SMS status
 * callbacks (signed with X-Twilio-Signature). No API key: the link's HMAC or the provider's
 * signature is the authentication.
 */
export async function registerCallbackRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    const unsubscribe = async (token: string): Promise<'done' | 'invalid'> => {
      const target = readUnsubscribeToken(deps.unsubscribeKey, token);
      const project = target ? deps.control.project(target.projectId) : undefined;
      if (!target || !project) return 'invalid';
      if (target.customId) {
        // Through the log like any profile write: durable before we answer, ordered, replayable (I1).
        const runtime = deps.cells.get(project.cellId);
        await runtime.append({
          payloads: [
            encodeRecord({
              kind: 'profile.update',
              project_id: project.id,
              custom_id: target.customId,
              attributes: { natives: { emailMarketing: 'unsubscribed' }, custom: {} },
              received_at: deps.clock.now(),
            }),
          ],
        });
      }
      return 'done';
    };

    scope.post(
      '/v1/unsubscribe/:token',
      { schema: { tags: ['callbacks'], summary: 'One-click unsubscribe (RFC 8058), from a marketing email’s List-Unsubscribe header', params: Type.Object({ token: Type.String() }) } },
      async (request, reply) => {
        const result = await unsubscribe((request.params as { token: string }).token);
        return reply.code(result === 'done' ? 200 : 404).type('text/plain').send(result === 'done' ? 'You are unsubscribed.' : 'This link is not valid.');
      },
    );

    scope.get(
      '/v1/unsubscribe/:token',
      { schema: { tags: ['callbacks'], summary: 'The page behind an unsubscribe link: one button, which POSTs', params: Type.Object({ token: Type.String() }) } },
      (request, reply) => {
        const token = encodeURIComponent((request.params as { token: string }).token);
        // A GET never unsubscribes: mail scanners follow links (RFC 8058 §3.2).
        return reply
          .type('text/html')
          .send(`<!doctype html><meta charset="utf-8"><title>Unsubscribe</title><form method="post" action="${token}"><button>Unsubscribe from these emails</button></form>`);
      },
    );

    scope.post(
      '/v1/callbacks/sms/:project_id',
      { schema: { tags: ['callbacks'], summary: 'SMS status callback (Twilio-compatible, signed)', params: Type.Object({ project_id: Type.String() }) } },
      async (request, reply) => {
        const projectId = (request.params as { project_id: string }).project_id;
        const project = deps.control.project(projectId);
        const record = project ? deps.control.providers(project.id).find((p) => p.kind === 'sms') : undefined;
        const params = form(request.body);
        if (!project || !record) return reply.code(404).send();
        const credentials = deps.control.openCredentials(record) as SmsCredentials;
        const url = credentials.status_callback_url ?? '';
        const signature = String(request.headers['x-twilio-signature'] ?? '');
        if (!url || !verifyTwilioSignature(credentials.auth_token, url, Object.entries(params), signature)) return reply.code(403).send();
        const sid = params.MessageSid;
        const status = params.MessageStatus;
        if (sid && status) {
          await deps.cells.get(project.cellId).read((store) => store.recordReceipt(project.id, 'sms', sid, status, deps.clock.now()));
        }
        return reply.code(204).send();
      },
    );
  });
}
