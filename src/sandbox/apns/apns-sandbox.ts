import { randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { ActiveRule, RunningService, SandboxContext, SandboxService } from '../sandbox-model.ts';
import { applyDelay } from '../sandbox-model.ts';
import { ApnsTokenVerifier } from './apns-sandbox-auth.ts';
import { checkNotification, one } from './apns-sandbox-request.ts';
import { listen } from '../listen.ts';

/** What the real service sends with each status when a rule names none. */
const DEFAULT_REASONS: Readonly<Record<number, string>> = {
  400: 'BadDeviceToken',
  403: 'Forbidden',
  404: 'BadPath',
  405: 'MethodNotAllowed',
  410: 'Unregistered',
  413: 'PayloadTooLarge',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};
/** Enough to tell an oversized payload from a 4 KB one without buffering whatever a client sends. */
const MAX_BUFFERED_BYTES = 64 * 1024;

export interface ApnsSandboxOptions {
  /** Observes each HTTP/2 connection accepted (tests count them). */
  onSession?: () => void;
  /** SETTINGS_MAX_CONCURRENT_STREAMS; Apple allows up to 1,000 per connection. */
  maxConcurrentStreams?: number;
}

function answer(stream: http2.ServerHttp2Stream, status: number, apnsId: string, body?: object, extra: http2.OutgoingHttpHeaders = {}): void {
  if (stream.destroyed || stream.closed) return;
  if (!body) {
    stream.respond({ ':status': status, 'apns-id': apnsId, ...extra }, { endStream: true });
    return;
  }
  stream.respond({ ':status': status, 'apns-id': apnsId, 'content-type': 'application/json', ...extra });
  stream.end(JSON.stringify(body));
}

/** The recorded headers: the request's own, with the token's signature cut so the record is no credential. */
function recordedHeaders(headers: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (out.authorization) out.authorization = out.authorization.replace(/^(bearer\s+[^.]+\.[^.]+)\.\S*$/i, '$1.<signature>');
  return out;
}

/** Answers a misbehaviour rule in APNs's own format. */
function answerRule(stream: http2.ServerHttp2Stream, rule: ActiveRule, apnsId: string, nowMs: number): void {
  const status = rule.status ?? 500;
  const reason = rule.reason ?? DEFAULT_REASONS[status] ?? 'InternalServerError';
  // APNs: a 410 carries the time (ms) at which the token was last known to be invalid.
  const body = status === 410 ? { reason, timestamp: nowMs } : { reason };
  const extra: http2.OutgoingHttpHeaders = rule.retryAfterSeconds === undefined ? {} : { 'retry-after': String(rule.retryAfterSeconds) };
  // A shutting-down APNs server says so and sends GOAWAY: the provider must reconnect.
  if (reason === 'Shutdown' || reason === 'IdleTimeout') stream.session?.close();
  answer(stream, status, apnsId, body, extra);
}

async function handle(ctx: SandboxContext, verifier: ApnsTokenVerifier, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer): Promise<void> {
  const requestId = one(headers, 'apns-id');
  // APNs echoes the request's apns-id, or makes one up when there is none (or it is malformed).
  const apnsId = requestId && /^[0-9a-f-]{36}$/i.test(requestId) ? requestId : randomUUID();
  const auth = verifier.check(one(headers, 'authorization'), ctx.clock.now());
  if ('reason' in auth) return answer(stream, 403, apnsId, { reason: auth.reason });
  const checked = checkNotification(headers, body, auth.material.topic);
  if ('reason' in checked) return answer(stream, checked.status, apnsId, { reason: checked.reason });
  const rule = ctx.behaviors.match('apns', checked.token);
  if (rule) {
    const abort = new AbortController();
    stream.once('close', () => abort.abort());
    await applyDelay(rule, abort.signal);
    if (rule.hang || stream.destroyed || stream.closed) return;
    if (rule.status !== undefined && rule.status >= 400) return answerRule(stream, rule, apnsId, ctx.clock.now());
  }
  ctx.recorder.record({ kind: 'apns', channel: 'push', to: checked.token, headers: recordedHeaders(headers), body: checked.payload });
  answer(stream, 200, apnsId, undefined, { 'apns-unique-id': randomUUID() });
}

/**
 * A stand-in for APNs over h2c (HTTP/2 without TLS): POST /3/device/<token>, checked the way
 * Apple does — the provider token's ES256 signature against the key registered in trust, then
 * topic, push type, apns-id, priority, expiration, collapse id, device token, payload — then
 * misbehaviour rules, then the notification is recorded and answered 200 with its apns-id.
 */
export function createApnsSandbox(options: ApnsSandboxOptions = {}): SandboxService {
  return {
    kind: 'apns',
    channel: 'push',
    async start(ctx: SandboxContext): Promise<RunningService> {
      const verifier = new ApnsTokenVerifier(ctx.trust);
      const sessions = new Set<http2.ServerHttp2Session>();
      const server = http2.createServer({ settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 } });
      server.on('session', (session) => {
        sessions.add(session);
        session.on('close', () => sessions.delete(session));
        session.on('error', () => undefined);
        options.onSession?.();
      });
      server.on('stream', (stream, headers) => {
        const chunks: Buffer[] = [];
        let size = 0;
        stream.on('error', () => undefined);
        stream.on('data', (chunk: Buffer) => {
          if (size < MAX_BUFFERED_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        stream.on('end', () => {
          handle(ctx, verifier, stream, headers, Buffer.concat(chunks)).catch((error: unknown) => {
            ctx.logger.error({ err: (error as Error).message }, 'apns sandbox: request failed');
            answer(stream, 500, randomUUID(), { reason: 'InternalServerError' });
          });
        });
      });
      await listen(server, ctx.portFor('apns'), ctx.host);
      const endpoint = `http://${ctx.host}:${(server.address() as AddressInfo).port}`;
      return {
        endpoint,
        close: () =>
          new Promise<void>((resolve) => {
            for (const session of sessions) session.destroy();
            server.close(() => resolve());
          }),
      };
    },
  };
}

/** The sandbox's APNs, as registered in `sandbox/registry.ts`. */
export const apnsSandbox: SandboxService = createApnsSandbox();
