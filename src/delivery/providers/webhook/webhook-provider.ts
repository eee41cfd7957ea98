import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Type, type Static } from 'typebox';
import type { DeliveryRequest, SendOutcome, WebhookContent } from '../../delivery-model.ts';
import { permanent, recipientInvalid, retryable, retryAfterMs, sent } from '../../delivery-model.ts';
import type { CredentialProblem, ProviderContext, ProviderDefinition } from '../../provider.ts';
import { isPrivateAddress, publicOnlyLookup } from '../../net/private-address.ts';

const WebhookCredentials = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'Where to POST (http or https). "sandbox:/path" targets the sandbox receiver.' }),
    secret: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Standard Webhooks signing secret: "whsec_" and base64 of 24 to 64 random bytes.',
    }),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000, description: 'Give up after this long (default 10,000).' })),
    allow_private_targets: Type.Optional(
      Type.Boolean({ description: 'Allow loopback and private network addresses (default false).' }),
    ),
  },
  { additionalProperties: false },
);
export type WebhookCredentials = Static<typeof WebhookCredentials>;

/** A fresh Standard Webhooks secret. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The Standard Webhooks signature header for one delivery. */
export function signWebhook(secret: string, id: string, timestampS: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}

function validate(raw: unknown): { ok: true; credentials: WebhookCredentials } | { ok: false; problems: CredentialProblem[] } {
  const c = raw as WebhookCredentials;
  const problems: CredentialProblem[] = [];
  if (!c.url.startsWith('sandbox:')) {
    let url: URL | undefined;
    try {
      url = new URL(c.url);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      problems.push({ path: '/url', code: 'INVALID_URL', message: 'must be an http or https URL' });
    } else if (!c.allow_private_targets && isPrivateAddress(url.hostname.replace(/^\[|\]$/g, ''))) {
      problems.push({ path: '/url', code: 'PRIVATE_TARGET', message: 'is a private or loopback address; set allow_private_targets to allow it' });
    }
  }
  const key = c.secret.startsWith('whsec_') ? Buffer.from(c.secret.slice(6), 'base64') : Buffer.alloc(0);
  if (key.length < 24 || key.length > 64) {
    problems.push({ path: '/secret', code: 'INVALID_SECRET', message: 'must be "whsec_" followed by base64 of 24 to 64 bytes' });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, credentials: c };
}

interface HttpAnswer {
  status: number;
  retryAfter: string | undefined;
}

function post(url: URL, body: string, headers: Record<string, string>, options: { timeoutMs: number; allowPrivate: boolean; signal: AbortSignal }): Promise<HttpAnswer> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        timeout: options.timeoutMs,
        signal: options.signal,
        ...(options.allowPrivate ? {} : { lookup: publicOnlyLookup }),
      },
      (res) => {
        res.resume(); // the body is not needed; drain it so the socket can be reused
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'TIMEOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Outbound webhooks, signed per the Standard Webhooks spec: `webhook-id` is the message id (the
 * receiver's idempotency key), `webhook-timestamp` the send time, `webhook-signature` v1
 * HMAC-SHA256. 2xx is delivered; a redirect is a failure (never followed); 410 means the endpoint
 * asked to be removed; 408/429/5xx and network errors are retried.
 */
export const webhookProvider: ProviderDefinition<WebhookCredentials> = {
  kind: 'webhook',
  label: 'Webhook (Standard Webhooks)',
  channel: 'webhook',
  credentialsSchema: WebhookCredentials,
  limits: { ratePerSecond: 500, maxConcurrency: 64 },
  validate,
  create(credentials, context: ProviderContext) {
    const target = credentials.url.startsWith('sandbox:')
      ? new URL(credentials.url.slice('sandbox:'.length) || '/', context.sandbox.webhook ?? 'http://sandbox.invalid')
      : new URL(credentials.url);
    const allowPrivate = credentials.allow_private_targets === true || credentials.url.startsWith('sandbox:') || context.allowPrivateTargets;
    const timeoutMs = credentials.timeout_ms ?? 10_000;
    return {
      async send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome> {
        const content = request.content as WebhookContent;
        const now = context.clock.now();
        const timestampS = Math.floor(now / 1000);
        const body = JSON.stringify({ type: content.type, timestamp: new Date(now).toISOString(), data: content.data });
        let answer: HttpAnswer;
        try {
          answer = await post(
            target,
            body,
            {
              'content-type': 'application/json',
              'user-agent': 'Herald-Webhooks/1',
              'webhook-id': request.messageId,
              'webhook-timestamp': String(timestampS),
              'webhook-signature': signWebhook(credentials.secret, request.messageId, timestampS, body),
            },
            { timeoutMs, allowPrivate, signal },
          );
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'NETWORK';
          const message = (error as Error).message;
          if (code === 'PRIVATE_TARGET') return permanent('PRIVATE_TARGET', message);
          return retryable(code === 'TIMEOUT' || code === 'ABORT_ERR' ? 'TIMEOUT' : code, message);
        }
        const { status } = answer;
        if (status >= 200 && status < 300) return sent(null);
        if (status === 410) return recipientInvalid('GONE', 'the endpoint answered 410 Gone: it asked to be removed', 'disable-endpoint');
        if (status >= 300 && status < 400) return permanent(`HTTP_${status}`, 'the endpoint answered a redirect; webhooks do not follow redirects');
        if (status === 408 || status === 429 || status >= 500) {
          return retryable(`HTTP_${status}`, `the endpoint answered ${status}`, retryAfterMs(answer.retryAfter, context.clock.now()));
        }
        return permanent(`HTTP_${status}`, `the endpoint answered ${status}`);
      },
      close: () => Promise.resolve(),
    };
  },
};
