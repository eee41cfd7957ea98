import type { DeliveryRequest, SendOutcome } from '../../delivery-model.ts';
import { permanent, retryable, retryAfterMs, sent } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext, ProviderDefinition } from '../../provider.ts';
import { resolveEndpoint } from '../../provider.ts';
import { FCM_DEFAULT_ENDPOINT, FcmCredentials, parseServiceAccountKey, validateFcmCredentials } from './fcm-credentials.ts';
import { fcmErrorOutcome, parseFcmError } from './fcm-errors.ts';
import { fcmMessage } from './fcm-message.ts';
import { describeNetworkError, FcmAccessTokens, FcmAuthError } from './fcm-oauth.ts';

export type { FcmCredentials } from './fcm-credentials.ts';

/** Give up on one send after this long; the dispatcher retries it. */
const SEND_TIMEOUT_MS = 10_000;

async function readBody(response: Response): Promise<unknown> {
  try {
    return JSON.parse(await response.text()) as unknown;
  } catch {
    return null;
  }
}

function networkOutcome(error: unknown, signal: AbortSignal): SendOutcome {
  const name = (error as { name?: string }).name;
  // Our own deadline or the caller's: either way FCM did not answer in time.
  if (name === 'TimeoutError') return retryable('TIMEOUT', 'FCM did not answer in time');
  if (name === 'AbortError' || signal.aborted) return retryable('ABORTED', 'the send was cancelled before FCM answered');
  return retryable('NETWORK', `FCM could not be reached: ${describeNetworkError(error)}`);
}

function authOutcome(error: FcmAuthError, nowMs: number): SendOutcome {
  return error.retryable ? retryable(error.code, error.message, retryAfterMs(error.retryAfterHeader, nowMs)) : permanent(error.code, error.message);
}

function createClient(credentials: FcmCredentials, context: ProviderContext): ProviderClient {
  const sa = credentials.service_account;
  const key = parseServiceAccountKey(sa.private_key);
  if (typeof key === 'string') throw new Error('FCM credentials were not validated: the private key does not parse');
  const tokens = new FcmAccessTokens(
    { clientEmail: sa.client_email, privateKeyId: sa.private_key_id, tokenUri: sa.token_uri, key },
    context.clock,
  );
  const base = resolveEndpoint(credentials.endpoint ?? FCM_DEFAULT_ENDPOINT, 'fcm', context).replace(/\/+$/, '');
  const sendUrl = `${base}/v1/projects/${encodeURIComponent(sa.project_id)}/messages:send`;

  async function send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(SEND_TIMEOUT_MS)]);
    let accessToken: string;
    try {
      accessToken = await tokens.get(deadline);
    } catch (error) {
      if (error instanceof FcmAuthError) return authOutcome(error, context.clock.now());
      return networkOutcome(error, signal);
    }
    let response: Response;
    let body: unknown;
    try {
      response = await fetch(sendUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ message: fcmMessage(request, context.clock.now()) }),
        signal: deadline,
      });
      body = await readBody(response);
    } catch (error) {
      return networkOutcome(error, signal);
    }
    if (response.ok) {
      const name = (body as { name?: unknown } | null)?.name;
      return sent(typeof name === 'string' ? name : null);
    }
    const answer = parseFcmError(response.status, body);
    if (response.status === 401 && answer.errorCode !== 'THIRD_PARTY_AUTH_ERROR') {
      // FCM: the access token was refused (expired early, revoked): drop it; the retry fetches a new one.
      tokens.invalidate(accessToken);
      return retryable(answer.status ?? 'UNAUTHENTICATED', `FCM refused the access token (401): ${answer.message}`);
    }
    return fcmErrorOutcome(answer, response.headers.get('retry-after'), context.clock.now());
  }

  return { send, close: () => Promise.resolve() };
}

/**
 * Firebase Cloud Messaging, HTTP v1 API: `POST /v1/projects/{project}/messages:send` authorised by an
 * OAuth 2.0 access token obtained with the service account's signed JWT (see fcm-oauth.ts). Android
 * priority, ttl and collapse key come from the content and the message's expiry.
 */
export const fcmProvider: ProviderDefinition<FcmCredentials> = {
  kind: 'fcm',
  label: 'Firebase Cloud Messaging (HTTP v1)',
  channel: 'push',
  platforms: ['android'],
  credentialsSchema: FcmCredentials,
  // FCM's default quota is 600,000 messages per minute per project, i.e. 10,000/s.
  limits: { ratePerSecond: 10_000, maxConcurrency: 200 },
  validate: validateFcmCredentials,
  create: createClient,
};
