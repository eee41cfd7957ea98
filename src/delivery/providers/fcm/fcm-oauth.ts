import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../../core/clock.ts';

/** The OAuth scope that allows sending with FCM HTTP v1. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google: an assertion may live at most one hour. */
const ASSERTION_LIFETIME_S = 3600;
/** Renew this long before the access token expires, so a send never carries one that just died. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/** One exchange is shared by every waiting send; it must not hang them all. */
const EXCHANGE_TIMEOUT_MS = 15_000;

export interface ServiceAccountIdentity {
  clientEmail: string;
  privateKeyId: string;
  tokenUri: string;
  key: KeyObject;
}

/**
 * A token exchange the token endpoint refused, or could not answer. `retryable` is false when the
 * credentials themselves are wrong (invalid_grant, unauthorized_client): only new credentials help.
 */
export class FcmAuthError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterHeader: string | null = null,
  ) {
    super(message);
    this.name = 'FcmAuthError';
  }
}

interface CachedToken {
  accessToken: string;
  /** When Herald stops using it, a margin before Google's expiry. */
  renewAtMs: number;
}

/**
 * Google OAuth 2.0 for server-to-server applications: a JWT signed with the service account's key
 * (RS256, header `kid` = private_key_id; `iss`, `scope`, `aud` = token_uri, `iat`, `exp` ≤ 1 h) is
 * exchanged at token_uri for an access token. The token is cached until shortly before it expires,
 * and one exchange at a time is in flight: concurrent sends wait for the same one.
 */
export class FcmAccessTokens {
  #cached: CachedToken | null = null;
  #inflight: Promise<CachedToken> | null = null;

  constructor(
    private readonly identity: ServiceAccountIdentity,
    private readonly clock: Clock,
  ) {}

  /** A valid access token, from the cache or from one shared exchange. Throws FcmAuthError. */
  async get(signal: AbortSignal): Promise<string> {
    const cached = this.#cached;
    if (cached && this.clock.now() < cached.renewAtMs) return cached.accessToken;
    if (!this.#inflight) {
      const exchange = this.#exchange().finally(() => {
        this.#inflight = null;
      });
      // Every waiter may have given up; the outcome is still observed, never an unhandled rejection.
      exchange.catch(() => undefined);
      this.#inflight = exchange;
    }
    return (await waitOrAbort(this.#inflight, signal)).accessToken;
  }

  /** FCM said 401: forget this token (if still cached) so the next send fetches a new one. */
  invalidate(accessToken: string): void {
    if (this.#cached?.accessToken === accessToken) this.#cached = null;
  }

  async #exchange(): Promise<CachedToken> {
    const { clientEmail, privateKeyId, tokenUri, key } = this.identity;
    const startedMs = this.clock.now();
    const iat = Math.floor(startedMs / 1000);
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: privateKeyId })
      .setIssuer(clientEmail)
      .setAudience(tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_LIFETIME_S)
      .sign(key);
    let response: Response;
    try {
      response = await fetch(tokenUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
        signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS),
      });
    } catch (error) {
      throw new FcmAuthError('OAUTH_UNREACHABLE', `the OAuth token endpoint did not answer: ${describeNetworkError(error)}`, true);
    }
    const body = await readJson(response);
    if (!response.ok) throw refusal(response, body);
    const accessToken = typeof body.access_token === 'string' ? body.access_token : '';
    const expiresInS = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in);
    if (!accessToken || !Number.isFinite(expiresInS) || expiresInS <= 0) {
      throw new FcmAuthError('OAUTH_BAD_RESPONSE', 'the OAuth token endpoint answered without an access token', true);
    }
    // Measured from when the exchange started, so a slow answer cannot stretch the token's life.
    const margin = Math.min(REFRESH_MARGIN_MS, (expiresInS * 1000) / 2);
    const token = { accessToken, renewAtMs: startedMs + expiresInS * 1000 - margin };
    this.#cached = token;
    return token;
  }
}

/** RFC 6749 §5.2: `{error, error_description}`; 4xx means these credentials will not do. */
function refusal(response: Response, body: Record<string, unknown>): FcmAuthError {
  const error = typeof body.error === 'string' ? body.error : `http_${response.status}`;
  const description = typeof body.error_description === 'string' ? `: ${body.error_description}` : '';
  const retry = response.status === 429 || response.status >= 500;
  return new FcmAuthError(
    `OAUTH_${error.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`,
    `the OAuth token endpoint refused the service account (${response.status} ${error}${description})`,
    retry,
    response.headers.get('retry-after'),
  );
}

async function readJson(response: Response): Promise<Record<string, unknown>> {
  try {
    const parsed: unknown = await response.json();
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The caller stops waiting when its signal fires; the shared exchange goes on for the others. */
function waitOrAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError');
}

/** A short description of a fetch failure: its cause's code where undici gives one. */
export function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}
