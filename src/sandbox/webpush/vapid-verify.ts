import { createPublicKey, verify, type KeyObject } from 'node:crypto';

/**
 * A push service's check of VAPID (RFC 8292), written from the RFC with node:crypto so it does not
 * share code with the web-push library that signs: `Authorization: vapid t=<JWT>, k=<key>`, the JWT
 * signed ES256 by k, `aud` the push resource's origin, `exp` in the future and at most 24 hours
 * away, `sub` a contact URI.
 */

export type VapidCheck =
  | { ok: true; publicKey: string; subject: string; expiresAtS: number }
  | { ok: false; status: 401 | 403; reason: string };

export interface VapidExpectation {
  /** The origin of the push resource the request was sent to (RFC 8292 §2). */
  audience: string;
  nowS: number;
  /** RFC 8292 §4: a subscription restricted to this key (the browser's applicationServerKey). */
  applicationServerKey?: string;
}

/** RFC 8292 §2: "exp" must not be more than 24 hours from the time of the request. */
const MAX_EXP_SECONDS = 24 * 3600;
const B64URL = /^[A-Za-z0-9_-]*$/;

const invalid = (reason: string): VapidCheck => ({ ok: false, status: 403, reason });

/** RFC 7235 auth-params: `name=token` or `name="quoted"`, comma separated. */
function authParams(header: string): Map<string, string> | null {
  const match = /^vapid\s+(.*)$/is.exec(header.trim());
  if (!match) return null;
  const params = new Map<string, string>();
  for (const part of (match[1] ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    params.set(name, value);
  }
  return params;
}

function p256Key(bytes: Buffer): KeyObject | null {
  if (bytes.length !== 65 || bytes[0] !== 0x04) return null;
  try {
    const x = bytes.subarray(1, 33).toString('base64url');
    const y = bytes.subarray(33).toString('base64url');
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
  } catch {
    return null;
  }
}

function jsonPart(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function checkClaims(claims: Record<string, unknown>, expect: VapidExpectation): string | null {
  if (claims.aud !== expect.audience) return `aud must be the push service origin ${expect.audience}`;
  const exp = claims.exp;
  if (typeof exp !== 'number' || !Number.isInteger(exp))
    return 'exp must be an integer (seconds since the epoch)';
  if (exp <= expect.nowS) return 'the token has expired (exp is in the past)';
  if (exp > expect.nowS + MAX_EXP_SECONDS) return 'exp is more than 24 hours away';
  const sub = claims.sub;
  if (typeof sub !== 'string' || !(sub.startsWith('mailto:') || sub.startsWith('https:'))) {
    return 'sub must be a mailto: or https: contact URI';
  }
  return null;
}

export function verifyVapid(authorization: string | undefined, expect: VapidExpectation): VapidCheck {
  // RFC 8292 §4.2: absent authentication may be answered 401, invalid authentication 403.
  if (!authorization) return { ok: false, status: 401, reason: 'missing Authorization: vapid t=…, k=…' };
  const params = authParams(authorization);
  if (!params)
    return { ok: false, status: 401, reason: 'the Authorization scheme must be "vapid" (RFC 8292 §3)' };
  const token = params.get('t');
  const keyText = params.get('k');
  if (!token || !keyText)
    return { ok: false, status: 401, reason: 'the vapid Authorization needs both t and k' };

  if (!B64URL.test(keyText)) return invalid('k is not base64url');
  const keyBytes = Buffer.from(keyText, 'base64url');
  const key = p256Key(keyBytes);
  if (!key) return invalid('k is not an uncompressed P-256 public key');

  const segments = token.split('.');
  const [headerPart, claimsPart, signaturePart] = segments;
  if (
    segments.length !== 3 ||
    headerPart === undefined ||
    claimsPart === undefined ||
    signaturePart === undefined
  ) {
    return invalid('t is not a JWS compact serialization');
  }
  if (!segments.every((s) => B64URL.test(s))) return invalid('t has a segment that is not base64url');
  const header = jsonPart(headerPart);
  const claims = jsonPart(claimsPart);
  if (!header || !claims) return invalid('the JWT header or claims are not JSON objects');
  if (header.alg !== 'ES256') return invalid('the JWT must be signed with ES256 (RFC 8292 §2)');
  const signature = Buffer.from(signaturePart, 'base64url');
  // JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 §3.4).
  const signed = Buffer.from(`${headerPart}.${claimsPart}`, 'ascii');
  if (signature.length !== 64 || !verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)) {
    return invalid('the JWT signature does not verify with k');
  }
  const problem = checkClaims(claims, expect);
  if (problem) return invalid(problem);
  if (
    expect.applicationServerKey !== undefined &&
    !Buffer.from(expect.applicationServerKey, 'base64url').equals(keyBytes)
  ) {
    return invalid('k is not the applicationServerKey this subscription was created with (RFC 8292 §4)');
  }
  return {
    ok: true,
    publicKey: keyBytes.toString('base64url'),
    subject: claims.sub as string,
    expiresAtS: claims.exp as number,
  };
}
