import { createPrivateKey } from 'node:crypto';
import { Type, type Static } from 'typebox';
import type { CredentialProblem } from '../../provider.ts';

/** Apple's hosts for token-based provider connections. */
export const APNS_ORIGINS = {
  production: 'https://api.push.apple.com',
  development: 'https://api.sandbox.push.apple.com',
} as const;

export const ApnsCredentialsSchema = Type.Object(
  {
    team_id: Type.String({ minLength: 10, maxLength: 10, description: 'The 10-character Team ID of the Apple developer account.' }),
    key_id: Type.String({ minLength: 10, maxLength: 10, description: 'The 10-character Key ID of the APNs authentication key.' }),
    private_key: Type.String({
      minLength: 1,
      maxLength: 10_000,
      description: 'The APNs authentication key (.p8 file contents): a PKCS#8 PEM P-256 private key.',
    }),
    topic: Type.String({ minLength: 1, maxLength: 255, description: "The app's bundle id, sent as apns-topic." }),
    environment: Type.Optional(
      Type.Union([Type.Literal('production'), Type.Literal('development')], {
        description: 'api.push.apple.com (production, default) or api.sandbox.push.apple.com (development builds).',
      }),
    ),
    endpoint: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2048, description: 'Overrides the environment: an http(s) origin, or "sandbox" for the Herald sandbox.' }),
    ),
  },
  { additionalProperties: false },
);
export type ApnsCredentials = Static<typeof ApnsCredentialsSchema>;

// Apple issues Team IDs and Key IDs as 10 upper-case alphanumerics.
const APPLE_ID = /^[A-Z0-9]{10}$/;
// A bundle id: reverse-DNS segments of letters, digits and hyphens.
const BUNDLE_ID = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;

/** Parses the key and returns it as PKCS#8 PEM, or a problem. The key never appears in a message. */
function normalisePrivateKey(pem: string): { pem: string } | CredentialProblem {
  const problem = (message: string): CredentialProblem => ({ path: '/private_key', code: 'INVALID_PRIVATE_KEY', message });
  if (!pem.includes('-----BEGIN')) return problem('must be the PEM text of the .p8 file (-----BEGIN PRIVATE KEY-----)');
  try {
    const key = createPrivateKey({ key: pem.trim(), format: 'pem' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      return problem('must be an elliptic-curve P-256 key (APNs signs tokens with ES256)');
    }
    // An "EC PRIVATE KEY" (SEC1) export of the same key is accepted and stored as PKCS#8, like the .p8 file.
    return { pem: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
  } catch {
    return problem('is not a readable PEM private key');
  }
}

function checkEndpoint(endpoint: string): CredentialProblem | null {
  if (endpoint === 'sandbox') return null;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { path: '/endpoint', code: 'INVALID_ENDPOINT', message: 'must be an http(s) origin or "sandbox"' };
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return { path: '/endpoint', code: 'INVALID_ENDPOINT', message: 'must be an http(s) origin without a path, or "sandbox"' };
  }
  return null;
}

/** Checks what the schema cannot: the key parses as P-256, ids have Apple's form, the endpoint is an origin. */
export function validateApnsCredentials(
  raw: unknown,
): { ok: true; credentials: ApnsCredentials } | { ok: false; problems: CredentialProblem[] } {
  const c = raw as ApnsCredentials;
  const problems: CredentialProblem[] = [];
  if (!APPLE_ID.test(c.team_id)) problems.push({ path: '/team_id', code: 'INVALID_TEAM_ID', message: 'must be 10 upper-case letters or digits' });
  if (!APPLE_ID.test(c.key_id)) problems.push({ path: '/key_id', code: 'INVALID_KEY_ID', message: 'must be 10 upper-case letters or digits' });
  const key = normalisePrivateKey(c.private_key);
  if ('path' in key) problems.push(key);
  if (!BUNDLE_ID.test(c.topic) || c.topic.length > 155) {
    problems.push({ path: '/topic', code: 'INVALID_TOPIC', message: "must be the app's bundle id, e.g. com.example.app" });
  }
  const environment = c.environment ?? 'production';
  if (environment !== 'production' && environment !== 'development') {
    problems.push({ path: '/environment', code: 'INVALID_ENVIRONMENT', message: 'must be "production" or "development"' });
  }
  const endpointProblem = c.endpoint === undefined ? null : checkEndpoint(c.endpoint);
  if (endpointProblem) problems.push(endpointProblem);
  if (problems.length > 0 || 'path' in key) return { ok: false, problems };
  const credentials: ApnsCredentials = { team_id: c.team_id, key_id: c.key_id, private_key: key.pem, topic: c.topic, environment };
  if (c.endpoint !== undefined) credentials.endpoint = c.endpoint.replace(/\/$/, '');
  return { ok: true, credentials };
}
