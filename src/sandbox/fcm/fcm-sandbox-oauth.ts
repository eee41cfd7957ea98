import { createPublicKey, randomBytes } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { Clock } from '../../core/clock.ts';
import type { SandboxTrust } from '../sandbox-model.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Scopes that allow sending with FCM. */
const FCM_SCOPES = new Set(['https://www.googleapis.com/auth/firebase.messaging', 'https://www.googleapis.com/auth/cloud-platform']);
const ACCESS_TOKEN_LIFETIME_S = 3600;
/** Google: an assertion lives at most an hour. */
const MAX_ASSERTION_LIFETIME_S = 3600;
/** How far ahead of our clock an `iat` may be. */
const CLOCK_SKEW_S = 300;

interface IssuedToken {
  projectId: string;
  clientEmail: string;
  expiresAtMs: number;
}

export interface OAuthAnswer {
  status: number;
  body: Record<string, unknown>;
}

const refuse = (error: string, description: string): OAuthAnswer => ({ status: 400, body: { error, error_description: description } });

/**
 * The sandbox's Google OAuth 2.0 token endpoint for service accounts: verifies the JWT assertion
 * against the public key registered in trust under kind "fcm" and the client email
 * (`{publicKey: SPKI PEM, projectId, privateKeyId?}`), and issues short-lived access tokens that
 * the FCM stand-in accepts for that project only.
 */
export class SandboxOAuth {
  readonly #issued = new Map<string, IssuedToken>();

  constructor(
    private readonly trust: SandboxTrust,
    private readonly clock: Clock,
  ) {}

  /** `POST /token` with a form body; `audience` is this endpoint's own URL. */
  async exchange(form: URLSearchParams, audience: string): Promise<OAuthAnswer> {
    if (form.get('grant_type') !== JWT_BEARER) return refuse('unsupported_grant_type', `grant_type must be ${JWT_BEARER}`);
    const assertion = form.get('assertion');
    if (!assertion) return refuse('invalid_request', 'assertion is missing');
    let kid: string | undefined;
    let iss: unknown;
    try {
      const header = decodeProtectedHeader(assertion);
      if (header.alg !== 'RS256') return refuse('invalid_grant', 'Invalid JWT: the algorithm must be RS256.');
      kid = header.kid;
      iss = (JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown }).iss;
    } catch {
      return refuse('invalid_grant', 'Invalid JWT: the assertion is not a JWT.');
    }
    const material = typeof iss === 'string' ? this.trust.get('fcm', iss) : undefined;
    if (!material?.publicKey || !material.projectId) return refuse('invalid_grant', 'Invalid grant: account not found');
    if (material.privateKeyId && kid !== material.privateKeyId) return refuse('invalid_grant', 'Invalid JWT Signature: no key with this kid.');
    const nowMs = this.clock.now();
    try {
      const { payload } = await jwtVerify(assertion, createPublicKey(material.publicKey), {
        algorithms: ['RS256'],
        issuer: iss as string,
        audience,
        currentDate: new Date(nowMs),
        requiredClaims: ['iat', 'exp', 'scope'],
      });
      const iat = payload.iat!;
      const exp = payload.exp!;
      if (exp - iat > MAX_ASSERTION_LIFETIME_S || iat > nowMs / 1000 + CLOCK_SKEW_S) {
        return refuse('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values.');
      }
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
      if (!scopes.some((s) => FCM_SCOPES.has(s))) return refuse('invalid_scope', 'The scope does not allow sending with FCM.');
    } catch (error) {
      return refuse('invalid_grant', verifyFailure(error));
    }
    return { status: 200, body: this.#issue(material.projectId, iss as string, nowMs) };
  }

  /** What an `authorization` header is worth for `projectId`. */
  check(authorization: string | undefined, projectId: string): 'ok' | 'missing' | 'invalid' | 'wrong-project' {
    const match = /^Bearer (\S+)$/i.exec(authorization ?? '');
    if (!match) return 'missing';
    const issued = this.#issued.get(match[1]!);
    if (!issued || issued.expiresAtMs <= this.clock.now()) return 'invalid';
    return issued.projectId === projectId ? 'ok' : 'wrong-project';
  }

  #issue(projectId: string, clientEmail: string, nowMs: number): Record<string, unknown> {
    for (const [token, issued] of this.#issued) if (issued.expiresAtMs <= nowMs) this.#issued.delete(token);
    const accessToken = `ya29.sandbox-${randomBytes(24).toString('base64url')}`;
    this.#issued.set(accessToken, { projectId, clientEmail, expiresAtMs: nowMs + ACCESS_TOKEN_LIFETIME_S * 1000 });
    return { access_token: accessToken, expires_in: ACCESS_TOKEN_LIFETIME_S, token_type: 'Bearer' };
  }
}

function verifyFailure(error: unknown): string {
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'Invalid JWT Signature.';
  if (error instanceof joseErrors.JWTExpired) return 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `Invalid JWT: claim "${error.claim}" check failed (${error.reason}).`;
  return 'Invalid JWT.';
}
