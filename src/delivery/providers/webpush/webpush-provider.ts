import http from 'node:http';
import https from 'node:https';
import type { DeliveryRequest, SendOutcome } from '../../delivery-model.ts';
import { permanent, recipientInvalid, retryable, retryAfterMs, sent } from '../../delivery-model.ts';
import type { ProviderContext, ProviderDefinition } from '../../provider.ts';
import { isPrivateAddress, publicOnlyLookup } from '../../net/private-address.ts';
import { validateWebPushCredentials, WebPushCredentials } from './webpush-credentials.ts';
import { VapidAuthorization } from './vapid-authorization.ts';
import { buildPushRequest, type PushHttpRequest } from './webpush-request.ts';

export type { WebPushCredentials } from './webpush-credentials.ts';

/** Give up on a push service that does not answer within this long; the dispatcher retries. */
const TIMEOUT_MS = 10_000;
/** Enough of an error body to explain the refusal, not enough to hold a large page in memory. */
const MAX_ERROR_BODY = 2048;
const MAX_CONCURRENCY = 128;

interface PushAnswer {
  status: number;
  location: string | undefined;
  retryAfter: string | undefined;
  text: string;
}

function post(
  target: PushHttpRequest,
  agent: http.Agent,
  options: { allowPrivate: boolean; signal: AbortSignal },
): Promise<PushAnswer> {
  const client = target.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target.url,
      {
        method: 'POST',
        agent,
        headers: target.headers,
        timeout: TIMEOUT_MS,
        signal: options.signal,
        ...(options.allowPrivate ? {} : { lookup: publicOnlyLookup }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            location: res.headers.location,
            retryAfter: res.headers['retry-after'],
            text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${TIMEOUT_MS} ms`), { code: 'TIMEOUT' })),
    );
    req.on('error', reject);
    req.end(target.body);
  });
}

/** The push service's explanation, short and on one line (autopush answers JSON with a `message`). */
function explanation(text: string): string {
  let said = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown; reason?: unknown };
    if (typeof parsed.message === 'string') said = parsed.message;
    else if (typeof parsed.reason === 'string') said = parsed.reason;
  } catch {
    // not JSON: keep the text
  }
  said = said.replace(/\s+/g, ' ').trim().slice(0, 200);
  return said ? `: ${said}` : '';
}

/** RFC 8030 §5 and §7, RFC 8292 §4: what each push service answer means for the message. */
export function outcomeOf(answer: PushAnswer, nowMs: number): SendOutcome {
  const { status } = answer;
  const said = explanation(answer.text);
  if (status >= 200 && status < 300) return sent(answer.location ?? null);
  if (status === 404)
    return recipientInvalid(
      'HTTP_404',
      `the push service does not know this subscription (404)${said}`,
      'remove-subscription',
    );
  if (status === 410)
    return recipientInvalid(
      'HTTP_410',
      `the subscription expired or was unsubscribed (410 Gone)${said}`,
      'remove-subscription',
    );
  if (status === 413)
    return permanent('HTTP_413', `the push service refused the payload as too large (413)${said}`);
  if (status === 401 || status === 403) {
    return permanent(
      `HTTP_${status}`,
      `the push service refused the VAPID authorization (${status}); check the provider's VAPID keys${said}`,
    );
  }
  if (status === 408 || status === 429 || status >= 500) {
    return retryable(
      `HTTP_${status}`,
      `the push service answered ${status}${said}`,
      retryAfterMs(answer.retryAfter, nowMs),
    );
  }
  return permanent(`HTTP_${status}`, `the push service answered ${status}${said}`);
}

function sandboxOrigin(context: ProviderContext): string | null {
  const base = context.sandbox.webpush;
  return base ? new URL(base).origin : null;
}

/**
 * Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291). The
 * web-push library encrypts and signs; Herald sends, so concurrency and retries stay with the
 * dispatcher. 2xx is delivered (the Location header is the push service's id); 404/410 mean the
 * subscription is gone; 408/429/5xx and network errors are retried; other refusals are final.
 */
export const webpushProvider: ProviderDefinition<WebPushCredentials> = {
  kind: 'webpush',
  label: 'Web Push (VAPID)',
  channel: 'push',
  platforms: ['web'],
  credentialsSchema: WebPushCredentials,
  limits: { ratePerSecond: 1000, maxConcurrency: MAX_CONCURRENCY },
  validate: validateWebPushCredentials,
  create(credentials, context: ProviderContext) {
    const agents = {
      https: new https.Agent({ keepAlive: true, maxSockets: MAX_CONCURRENCY }),
      http: new http.Agent({ keepAlive: true, maxSockets: MAX_CONCURRENCY }),
    };
    const sandbox = sandboxOrigin(context);
    const vapid = new VapidAuthorization(credentials);
    return {
      async send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome> {
        const built = buildPushRequest(request, vapid, context.clock.now());
        if (!built.ok) return built.outcome;
        const target = built.request;
        // Subscriptions come from browsers: only the sandbox, or a project that allows it, may
        // point Herald at loopback or private addresses, and plain http is only for those.
        const allowPrivate = context.allowPrivateTargets || target.url.origin === sandbox;
        const host = target.url.hostname.replace(/^\[|\]$/g, '');
        if (!allowPrivate && (target.url.protocol !== 'https:' || isPrivateAddress(host))) {
          return permanent('INSECURE_ENDPOINT', 'web push endpoints must be public https URLs');
        }
        let answer: PushAnswer;
        try {
          answer = await post(target, target.url.protocol === 'https:' ? agents.https : agents.http, {
            allowPrivate,
            signal,
          });
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'NETWORK';
          const message = (error as Error).message;
          if (code === 'PRIVATE_TARGET') return permanent('PRIVATE_TARGET', message);
          return retryable(code === 'TIMEOUT' || code === 'ABORT_ERR' ? 'TIMEOUT' : code, message);
        }
        return outcomeOf(answer, context.clock.now());
      },
      close() {
        agents.https.destroy();
        agents.http.destroy();
        return Promise.resolve();
      },
    };
  },
};
