import { createPrivateKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { Type, type Static } from 'typebox';
import type { CredentialProblem } from '../../provider.ts';

const ServiceAccount = Type.Object(
  {
    type: Type.Literal('service_account', { description: 'Always "service_account" in a Google service account key file.' }),
    project_id: Type.String({ minLength: 1, maxLength: 100, description: 'The Firebase (Google Cloud) project id.' }),
    private_key_id: Type.String({ minLength: 1, maxLength: 200, description: 'The id of the key: sent as the JWT "kid".' }),
    private_key: Type.String({ minLength: 1, maxLength: 10_000, description: 'The RSA private key, PEM.' }),
    client_email: Type.String({ minLength: 3, maxLength: 320, description: 'The service account: the JWT issuer.' }),
    token_uri: Type.String({ minLength: 1, maxLength: 2048, description: 'Google OAuth 2.0 token endpoint, https://oauth2.googleapis.com/token.' }),
  },
  // A key file downloaded from the console has more fields (client_id, auth_uri, ...): accepted, not kept.
  { additionalProperties: true },
);

export const FcmCredentials = Type.Object(
  {
    service_account: ServiceAccount,
    endpoint: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2048, description: 'FCM base URL (default https://fcm.googleapis.com); "sandbox" targets the local sandbox.' }),
    ),
  },
  { additionalProperties: false },
);
export type FcmCredentials = Static<typeof FcmCredentials>;

export const FCM_DEFAULT_ENDPOINT = 'https://fcm.googleapis.com';

// Google Cloud project ids: 6–30 lowercase letters, digits and hyphens, starting with a letter;
// older projects may carry a domain prefix ("example.com:my-project").
const PROJECT_ID = /^(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Parses the service account's key; RS256 needs RSA of at least 2048 bits. */
export function parseServiceAccountKey(pem: string): KeyObject | string {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return 'is not a PEM private key';
  }
  if (key.asymmetricKeyType !== 'rsa') return 'must be an RSA key (service account keys are RSA)';
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return 'must be an RSA key of at least 2048 bits';
  return key;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** https anywhere; plain http only on loopback (the sandbox, a local emulator). */
function urlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an https URL';
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return null;
  return 'must be an https URL (http only on loopback)';
}

/** Checks what the schema cannot; returns the credentials with only the fields Herald needs. */
export function validateFcmCredentials(raw: unknown): { ok: true; credentials: FcmCredentials } | { ok: false; problems: CredentialProblem[] } {
  const c = raw as FcmCredentials;
  const sa = c.service_account;
  const problems: CredentialProblem[] = [];
  if (sa.type !== 'service_account') {
    problems.push({ path: '/service_account/type', code: 'INVALID_SERVICE_ACCOUNT', message: 'must be "service_account"' });
  }
  if (!PROJECT_ID.test(sa.project_id)) {
    problems.push({ path: '/service_account/project_id', code: 'INVALID_PROJECT_ID', message: 'is not a Google Cloud project id' });
  }
  if (sa.private_key_id.trim() === '') {
    problems.push({ path: '/service_account/private_key_id', code: 'INVALID_KEY_ID', message: 'must not be blank' });
  }
  const key = parseServiceAccountKey(sa.private_key);
  // The key itself never goes into a message (I10), only what is wrong with it.
  if (typeof key === 'string') problems.push({ path: '/service_account/private_key', code: 'INVALID_PRIVATE_KEY', message: key });
  if (!EMAIL.test(sa.client_email)) {
    problems.push({ path: '/service_account/client_email', code: 'INVALID_CLIENT_EMAIL', message: 'must be the service account email address' });
  }
  const tokenUri = urlProblem(sa.token_uri);
  if (tokenUri) problems.push({ path: '/service_account/token_uri', code: 'INVALID_URL', message: tokenUri });
  const endpoint = c.endpoint === undefined || c.endpoint === 'sandbox' ? null : urlProblem(c.endpoint);
  if (endpoint) problems.push({ path: '/endpoint', code: 'INVALID_URL', message: `${endpoint}, or "sandbox"` });
  if (problems.length > 0) return { ok: false, problems };
  const credentials: FcmCredentials = {
    service_account: {
      type: 'service_account',
      project_id: sa.project_id,
      private_key_id: sa.private_key_id,
      private_key: sa.private_key,
      client_email: sa.client_email,
      token_uri: sa.token_uri,
    },
  };
  if (c.endpoint !== undefined) credentials.endpoint = c.endpoint.replace(/\/+$/, '');
  return { ok: true, credentials };
}
