import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { RunningService, SandboxContext, SandboxService } from '../sandbox-model.ts';
import { applyDelay } from '../sandbox-model.ts';
import { serveHttp } from '../listen.ts';

/** Standard Webhooks allows this much clock skew between sender and receiver. */
const TOLERANCE_SECONDS = 5 * 60;

function header(req: http.IncomingMessage, name: string): string {
  const value = req.headers[name];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

/**
 * Verifies a Standard Webhooks signature (https://www.standardwebhooks.com/), written from the
 * spec independently of Herald's signer, so a signing bug fails here: the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, HMAC-SHA256 with the base64 key after `whsec_`,
 * and `webhook-signature` lists space-separated `v1,<base64>` signatures.
 */
export function verifyStandardWebhook(secret: string, id: string, timestamp: string, body: string, signatures: string, nowS: number): string | null {
  if (!id || !timestamp || !signatures) return 'missing webhook-id, webhook-timestamp or webhook-signature';
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowS - ts) > TOLERANCE_SECONDS) return 'webhook-timestamp is not within 5 minutes of now';
  if (!secret.startsWith('whsec_')) return 'the registered secret is not a whsec_ secret';
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  for (const part of signatures.split(' ')) {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
  }
  return 'no v1 signature matches';
}

/**
 * A webhook receiver: accepts POSTs on any path, verifies the Standard Webhooks signature with the
 * secret registered for that URL (trust kind "webhook", id = the full URL), records the JSON body.
 */
export const webhookSandbox: SandboxService = {
  kind: 'webhook',
  channel: 'webhook',
  async start(ctx: SandboxContext): Promise<RunningService> {
    let base = '';
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const url = `${base}${req.url ?? '/'}`;
          const rule = ctx.behaviors.match('webhook', url);
          const abort = new AbortController();
          res.on('close', () => abort.abort());
          await applyDelay(rule, abort.signal);
          if (rule?.hang || res.destroyed) return;
          if (rule?.status) {
            if (rule.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(rule.retryAfterSeconds));
            res.writeHead(rule.status, { 'content-type': 'text/plain' }).end(rule.reason ?? 'sandbox rule');
            return;
          }
          const body = Buffer.concat(chunks).toString('utf8');
          if (req.method !== 'POST') return void res.writeHead(405).end();
          const secret = ctx.trust.get('webhook', url)?.secret;
          const problem = secret
            ? verifyStandardWebhook(
                secret,
                header(req, 'webhook-id'),
                header(req, 'webhook-timestamp'),
                body,
                header(req, 'webhook-signature'),
                Math.floor(ctx.clock.now() / 1000),
              )
            : `no webhook secret is registered for ${url}`;
          if (problem) return void res.writeHead(401, { 'content-type': 'text/plain' }).end(problem);
          let parsed: unknown;
          try {
            parsed = JSON.parse(body);
          } catch {
            return void res.writeHead(400, { 'content-type': 'text/plain' }).end('body is not JSON');
          }
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
          ctx.recorder.record({ kind: 'webhook', channel: 'webhook', to: url, headers, body: parsed });
          res.writeHead(204).end();
        })();
      });
    });
    const served = await serveHttp(server, ctx.portFor('webhook'), ctx.host);
    base = served.url;
    return { endpoint: base, close: served.close };
  },
};
