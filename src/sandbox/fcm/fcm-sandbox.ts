import http from 'node:http';
import type { RunningService, SandboxContext, SandboxService } from '../sandbox-model.ts';
import { applyDelay } from '../sandbox-model.ts';
import { googleError, ruleError, type GoogleErrorAnswer } from './fcm-sandbox-errors.ts';
import { checkSendBody } from './fcm-sandbox-message-check.ts';
import { SandboxOAuth } from './fcm-sandbox-oauth.ts';
import { serveHttp } from '../listen.ts';

const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
/** The same limit as the rest of Google's front ends would apply; a push is far smaller. */
const MAX_BODY_BYTES = 1024 * 1024;

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers }).end(text);
}

const answer = (res: http.ServerResponse, e: GoogleErrorAnswer): void => json(res, e.status, e.body, e.headers);

function stringHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
  return headers;
}

async function handleSend(ctx: SandboxContext, oauth: SandboxOAuth, projectId: string, req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
  // Google checks the caller before it reads the request.
  const auth = oauth.check(req.headers.authorization, projectId);
  if (auth === 'missing') return answer(res, googleError(401, 'Request is missing required authentication credential. Expected OAuth 2 access token.'));
  if (auth === 'invalid') return answer(res, googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.'));
  if (auth === 'wrong-project') {
    return answer(res, googleError(403, `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${projectId}'.`));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return answer(res, googleError(400, 'Invalid JSON payload received.'));
  }
  const checked = checkSendBody(parsed);
  if (!checked.ok) return answer(res, checked.error);
  const message = checked.message;
  const to = typeof message.token === 'string' ? message.token : `/topics/${String(message.topic ?? message.condition)}`;
  const rule = ctx.behaviors.match('fcm', to);
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  await applyDelay(rule, abort.signal);
  if (rule?.hang || res.destroyed) return;
  const misbehaviour = rule ? ruleError(rule) : null;
  if (misbehaviour) return answer(res, misbehaviour);
  const id = `0:${ctx.clock.now()}${Math.floor(Math.random() * 1e6)}`;
  // FCM: validate_only checks the message without delivering it.
  if (!checked.validateOnly) ctx.recorder.record({ kind: 'fcm', channel: 'push', to, headers: stringHeaders(req), body: message });
  json(res, 200, { name: `projects/${projectId}/messages/${checked.validateOnly ? 'fake_message_id' : id}` });
}

async function route(ctx: SandboxContext, oauth: SandboxOAuth, base: string, req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
  const url = new URL(req.url ?? '/', base);
  if (url.pathname === '/token') {
    if (req.method !== 'POST') return json(res, 405, { error: 'invalid_request', error_description: 'POST only' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      return json(res, 400, { error: 'invalid_request', error_description: 'the body must be application/x-www-form-urlencoded' });
    }
    const result = await oauth.exchange(new URLSearchParams(raw), `${base}/token`);
    return json(res, result.status, result.body, { 'cache-control': 'no-store' });
  }
  const send = SEND_PATH.exec(url.pathname);
  if (send && req.method === 'POST') return handleSend(ctx, oauth, decodeURIComponent(send[1]!), req, res, raw);
  return answer(res, googleError(404, `The requested URL ${url.pathname} was not found on this server.`));
}

/**
 * The sandbox's FCM: one HTTP server that is both Google's OAuth 2.0 token endpoint (`POST /token`,
 * JWT-bearer grant, see fcm-sandbox-oauth.ts) and FCM HTTP v1 (`POST /v1/projects/{p}/messages:send`,
 * bearer token of that project required, message checked like FCM does, misbehaviour rules answered
 * with FCM's own error JSON). Every accepted message is recorded under its registration token.
 */
export const fcmSandbox: SandboxService = {
  kind: 'fcm',
  channel: 'push',
  async start(ctx: SandboxContext): Promise<RunningService> {
    let base = '';
    const oauth = new SandboxOAuth(ctx.trust, ctx.clock);
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      req.on('end', () => {
        if (size > MAX_BODY_BYTES) return answer(res, googleError(400, 'Request payload size exceeds the limit.'));
        route(ctx, oauth, base, req, res, Buffer.concat(chunks).toString('utf8')).catch((error: unknown) => {
          ctx.logger.error({ err: error }, 'fcm sandbox failed to answer');
          if (!res.headersSent) answer(res, googleError(500, 'Internal error encountered.'));
        });
      });
    });
    const served = await serveHttp(server, ctx.portFor('fcm'), ctx.host);
    base = served.url;
    return { endpoint: base, close: served.close };
  },
};
