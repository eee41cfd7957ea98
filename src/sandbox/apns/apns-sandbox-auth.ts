import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { SandboxTrust } from '../sandbox-model.ts';

/** APNs refuses provider tokens issued more than an hour ago. */
const MAX_TOKEN_AGE_S = 60 * 60;
/** A token from the future is refused too; allow a little clock skew. */
const FUTURE_SKEW_S = 60;

/** A refusal in APNs's own terms: 403 and the reason. */
export interface AuthRefusal {
  reason: 'MissingProviderToken' | 'InvalidProviderToken' | 'ExpiredProviderToken';
}

interface Verified {
  kid: string;
  /** The trust entry it was verified against: re-registering a key id invalidates the cache. */
  material: Record<string, string>;
  iatS: number;
}

function decodeJson(part: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Checks provider tokens the way APNs does, written from Apple's description and RFC 7515/7518
 * rather than with the library Herald signs with, so a signing mistake fails here: a JWS compact
 * token, header `alg: ES256` and `kid` = a key id registered in trust (kind "apns", material
 * `teamId` and `publicKey` as SPKI PEM), claims `iss` = that team and `iat` within the last hour,
 * and a 64-byte R||S ECDSA P-256 SHA-256 signature over `header.claims`.
 */
export class ApnsTokenVerifier {
  // A provider reuses one token for up to an hour: verify each signature once, not per request.
  readonly #verified = new Map<string, Verified>();
  readonly #keys = new WeakMap<Record<string, string>, KeyObject>();

  constructor(private readonly trust: SandboxTrust) {}

  /** The trust entry of the key when APNs would accept the token at `nowMs`, else the refusal. */
  check(authorization: string | undefined, nowMs: number): AuthRefusal | { material: Record<string, string> } {
    const match = /^bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) return { reason: 'MissingProviderToken' };
    const jwt = match[1]!;
    let verified = this.#verified.get(jwt);
    if (verified && this.trust.get('apns', verified.kid) !== verified.material) verified = undefined;
    if (!verified) {
      const result = this.#verify(jwt);
      if ('reason' in result) return result;
      verified = result;
      if (this.#verified.size >= 1000) this.#verified.clear();
      this.#verified.set(jwt, verified);
    }
    const nowS = Math.floor(nowMs / 1000);
    if (verified.iatS > nowS + FUTURE_SKEW_S) return { reason: 'InvalidProviderToken' };
    if (nowS - verified.iatS > MAX_TOKEN_AGE_S) return { reason: 'ExpiredProviderToken' };
    return { material: verified.material };
  }

  #verify(jwt: string): Verified | AuthRefusal {
    const invalid: AuthRefusal = { reason: 'InvalidProviderToken' };
    const parts = jwt.split('.');
    if (parts.length !== 3) return invalid;
    const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
    const header = decodeJson(headerPart);
    const claims = decodeJson(claimsPart);
    if (!header || !claims || header.alg !== 'ES256' || typeof header.kid !== 'string') return invalid;
    const material = this.trust.get('apns', header.kid);
    if (!material?.publicKey || !material.teamId) return invalid;
    if (claims.iss !== material.teamId || typeof claims.iat !== 'number' || !Number.isInteger(claims.iat)) return invalid;
    const signature = Buffer.from(signaturePart, 'base64url');
    // JWS ES256 signatures are the raw 32-byte R and S, not DER (RFC 7518 §3.4).
    if (signature.length !== 64) return invalid;
    let key = this.#keys.get(material);
    if (!key) {
      try {
        key = createPublicKey(material.publicKey);
      } catch {
        return invalid;
      }
      this.#keys.set(material, key);
    }
    const ok = verify('sha256', Buffer.from(`${headerPart}.${claimsPart}`), { key, dsaEncoding: 'ieee-p1363' }, signature);
    return ok ? { kid: header.kid, material, iatS: claims.iat } : invalid;
  }
}
