import { createECDH, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { RunningService, SandboxContext, SandboxService } from '../sandbox-model.ts';
import { applyDelay } from '../sandbox-model.ts';
import { DecryptError, decryptAes128gcm } from './aes128gcm-decrypt.ts';
import { verifyVapid } from './vapid-verify.ts';
import { serveHttp } from '../listen.ts';

/** RFC 8030 §7.2: a push service must accept 4096 octets of body and may refuse more with 413. */
const MAX_BODY_BYTES = 4096;
/** RFC 8030 §5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet. */
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;
const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
const ID = /^[A-Za-z0-9_-]{8,64}$/;

/** A subscription as the sandbox keeps it in its trust store (kind "webpush", id = subscription id). */
interface Subscription {
  privateKey: string;
  publicKey: string;
  auth: string;
  applicationServerKey?: string;
  gone?: string;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Autopush-style error body, so Herald's error path reads what a real push service sends. */
function refuse(res: http.ServerResponse, status: number, message: string, retryAfterSeconds?: number): void {
  if (retryAfterSeconds !== undefined) res.setHeader('retry-after', String(retryAfterSeconds));
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ code: status, error: http.STATUS_CODES[status] ?? 'Error', message }));
}

function subscriptionOf(ctx: SandboxContext, id: string): Subscription | undefined {
  return ctx.trust.get('webpush', id) as Subscription | undefined;
}

/** A fake browser subscribing (Push API PushManager.subscribe): new P-256 key pair and auth secret. */
function subscribe(ctx: SandboxContext, base: string, body: Buffer, res: http.ServerResponse): void {
  let applicationServerKey: string | undefined;
  if (body.length > 0) {
    let options: { applicationServerKey?: unknown };
    try {
      options = JSON.parse(body.toString('utf8')) as { applicationServerKey?: unknown };
    } catch {
      return refuse(res, 400, 'the subscribe options are not JSON');
    }
    if (options.applicationServerKey !== undefined) {
      const key =
        typeof options.applicationServerKey === 'string'
          ? Buffer.from(options.applicationServerKey, 'base64url')
          : Buffer.alloc(0);
      if (key.length !== 65 || key[0] !== 0x04)
        return refuse(res, 400, 'applicationServerKey must be an uncompressed P-256 public key');
      applicationServerKey = key.toString('base64url');
    }
  }
  const ecdh = createECDH('prime256v1');
  const publicKey = ecdh.generateKeys();
  const privateKey = Buffer.alloc(32);
  const scalar = ecdh.getPrivateKey();
  scalar.copy(privateKey, 32 - scalar.length); // getPrivateKey drops leading zero bytes
  const auth = randomBytes(16); // RFC 8291 §3.2: a 16-octet authentication secret
  const id = randomBytes(16).toString('base64url');
  const material: Record<string, string> = {
    privateKey: privateKey.toString('base64url'),
    publicKey: publicKey.toString('base64url'),
    auth: auth.toString('base64url'),
  };
  if (applicationServerKey) material.applicationServerKey = applicationServerKey;
  ctx.trust.register('webpush', id, material);
  res.writeHead(201, { 'content-type': 'application/json', location: `${base}/subscriptions/${id}` });
  // The shape of PushSubscription.toJSON() in a browser.
  res.end(
    JSON.stringify({
      endpoint: `${base}/push/${id}`,
      expirationTime: null,
      keys: { p256dh: material.publicKey, auth: material.auth },
    }),
  );
}

/** The browser unsubscribing (RFC 8030 §7.3): later pushes to it answer 410 Gone. */
function unsubscribe(ctx: SandboxContext, id: string, res: http.ServerResponse): void {
  const material = ctx.trust.get('webpush', id);
  if (!material) return refuse(res, 404, 'no such subscription');
  ctx.trust.register('webpush', id, { ...material, gone: 'true' });
  res.writeHead(204).end();
}

/** Checks the RFC 8030 headers; the reason for a 400, or null. */
function headerProblem(req: http.IncomingMessage): string | null {
  const ttl = header(req, 'ttl');
  if (ttl === undefined) return 'the TTL header is required (RFC 8030 §5.2)';
  if (!/^\d+$/.test(ttl)) return 'TTL must be a non-negative integer number of seconds';
  const urgency = header(req, 'urgency');
  if (urgency !== undefined && !URGENCIES.has(urgency))
    return 'Urgency must be very-low, low, normal or high (RFC 8030 §5.3)';
  const topic = header(req, 'topic');
  if (topic !== undefined && !TOPIC.test(topic))
    return 'Topic must be at most 32 URL-safe base64 characters (RFC 8030 §5.4)';
  return null;
}

function recordedHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (typeof value === 'string') headers[name] = value;
  // The token is a replayable bearer credential for 24 h; keep who signed it, not the token.
  if (headers.authorization) headers.authorization = headers.authorization.replace(/t=[^,\s]+/i, 't=…');
  return headers;
}

/** A push message (RFC 8030 §5): VAPID, headers, decryption, then record it and answer 201. */
async function push(
  ctx: SandboxContext,
  base: string,
  id: string,
  req: http.IncomingMessage,
  body: Buffer | null,
  res: http.ServerResponse,
): Promise<void> {
  const endpoint = `${base}/push/${id}`;
  const rule = ctx.behaviors.match('webpush', endpoint);
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  await applyDelay(rule, abort.signal);
  if (rule?.hang || res.destroyed) return;
  if (rule?.status) return refuse(res, rule.status, rule.reason ?? 'sandbox rule', rule.retryAfterSeconds);

  const subscription = subscriptionOf(ctx, id);
  if (!subscription) return refuse(res, 404, 'no such subscription');
  if (subscription.gone) return refuse(res, 410, 'the subscription was unsubscribed');
  const vapid = verifyVapid(header(req, 'authorization'), {
    audience: new URL(base).origin,
    nowS: Math.floor(ctx.clock.now() / 1000),
    ...(subscription.applicationServerKey ? { applicationServerKey: subscription.applicationServerKey } : {}),
  });
  if (!vapid.ok) return refuse(res, vapid.status, vapid.reason);
  const problem = headerProblem(req);
  if (problem) return refuse(res, 400, problem);
  if (body === null) return refuse(res, 413, `the body is larger than ${MAX_BODY_BYTES} bytes`);

  let payload: unknown = null;
  if (body.length > 0) {
    // RFC 8291 §4: exactly one content coding, aes128gcm.
    if (header(req, 'content-encoding') !== 'aes128gcm')
      return refuse(res, 415, 'Content-Encoding must be aes128gcm (RFC 8291 §4)');
    let plaintext: Buffer;
    try {
      plaintext = decryptAes128gcm(body, {
        privateKey: Buffer.from(subscription.privateKey, 'base64url'),
        publicKey: Buffer.from(subscription.publicKey, 'base64url'),
        authSecret: Buffer.from(subscription.auth, 'base64url'),
      });
    } catch (error) {
      if (error instanceof DecryptError)
        return refuse(res, 400, `the browser could not decrypt the message: ${error.message}`);
      throw error;
    }
    const text = plaintext.toString('utf8');
    try {
      payload = JSON.parse(text);
    } catch {
      payload = text;
    }
  }
  ctx.recorder.record({
    kind: 'webpush',
    channel: 'push',
    to: endpoint,
    headers: recordedHeaders(req),
    body: payload,
  });
  // RFC 8030 §5: 201 Created, Location names the push message resource; TTL echoes what is kept.
  res.writeHead(201, { location: `${base}/messages/${randomUUID()}`, ttl: header(req, 'ttl') ?? '0' }).end();
}

/**
 * A push service and the browsers subscribed to it, in one: `POST /subscriptions` subscribes a fake
 * browser (optionally restricted to an `applicationServerKey`), `DELETE /subscriptions/:id`
 * unsubscribes it, `POST /push/:id` takes a push message as RFC 8030/8291/8292 require and records
 * what the browser would decrypt.
 */
export const webpushSandbox: SandboxService = {
  kind: 'webpush',
  channel: 'push',
  async start(ctx: SandboxContext): Promise<RunningService> {
    let base = '';
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => {
        const body = size <= MAX_BODY_BYTES ? Buffer.concat(chunks) : null;
        const path = new URL(req.url ?? '/', base).pathname;
        const [, resource, id] = /^\/(subscriptions|push)(?:\/([^/]+))?$/.exec(path) ?? [];
        const handled = (async () => {
          if (resource === 'subscriptions' && id === undefined && req.method === 'POST')
            return subscribe(ctx, base, body ?? Buffer.alloc(0), res);
          if (resource === undefined || id === undefined || !ID.test(id))
            return refuse(res, 404, 'not found');
          if (resource === 'subscriptions' && req.method === 'DELETE') return unsubscribe(ctx, id, res);
          if (resource === 'push' && req.method === 'POST') return push(ctx, base, id, req, body, res);
          return refuse(res, 405, 'method not allowed');
        })();
        handled.catch((error: unknown) => {
          ctx.logger.error({ err: error }, 'webpush sandbox failed on a request');
          if (!res.headersSent) refuse(res, 500, 'sandbox error');
        });
      });
    });
    const served = await serveHttp(server, ctx.portFor('webpush'), ctx.host);
    base = served.url;
    return { endpoint: base, close: served.close };
  },
};
