import type { FastifyRequest } from 'fastify';
import type { ControlPlane, Principal } from '../control/control-plane.ts';
import type { Clock } from '../core/clock.ts';
import { HeraldError } from '../core/errors.ts';
import { TokenBucket } from '../core/token-bucket.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export type Access = 'secret' | 'any';

/** The key from `Authorization: Bearer <key>`, or the user name of HTTP Basic (Segment's write key). */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? decoded : decoded.slice(0, colon);
  }
  return undefined;
}

/** Per-project token buckets (requests per second), sized from the project or the default. */
export class ProjectRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  constructor(
    private readonly clock: Clock,
    private readonly defaultPerSecond: number,
  ) {}

  check(principal: Principal): void {
    const rate = principal.project.rateLimitPerSecond ?? this.defaultPerSecond;
    let bucket = this.#buckets.get(principal.project.id);
    if (!bucket || bucket.ratePerSecond !== rate) {
      bucket = new TokenBucket(rate, Math.max(1, rate), this.clock.now());
      this.#buckets.set(principal.project.id, bucket);
    }
    const taken = bucket.take(this.clock.now());
    if (!taken.ok) throw new HeraldError('RATE_LIMITED', { retryAfterSeconds: Math.ceil(taken.retryAfterMs / 1000) });
  }
}

/**
 * Resolves the request's key to its project (I10: everything downstream uses only this project),
 * checks the key may call this route, and applies the project's rate limit.
 */
export function requireKey(control: ControlPlane, limiter: ProjectRateLimiter, access: Access) {
  return async (request: FastifyRequest): Promise<void> => {
    const key = presentedKey(request);
    if (!key) throw new HeraldError('UNAUTHORIZED');
    const principal = await control.authenticate(key);
    if (!principal) throw new HeraldError('UNAUTHORIZED', { message: 'This API key is not valid (unknown or revoked).' });
    if (access === 'secret' && principal.key.kind !== 'secret') {
      throw new HeraldError('FORBIDDEN', { message: 'This endpoint needs a secret key (sk_…); public keys may only register installations.' });
    }
    limiter.check(principal);
    request.principal = principal;
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new HeraldError('UNAUTHORIZED');
  return request.principal;
}
