import { isIP } from 'node:net';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { Type, type Static } from 'typebox';
import type { CredentialProblem } from '../../provider.ts';

export const DEFAULT_SMS_ENDPOINT = 'https://api.twilio.com';

export const SmsCredentials = Type.Object(
  {
    account_sid: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Account SID: "AC" and 32 hex digits.',
    }),
    auth_token: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Auth token (32 characters). Stored encrypted, never returned.',
    }),
    from: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        description: 'Sender number in E.164 form, e.g. +14155550100. Give this or messaging_service_sid.',
      }),
    ),
    messaging_service_sid: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'Messaging Service SID: "MG" and 32 hex digits. Give this or from.',
      }),
    ),
    status_callback_url: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        description: 'Where the provider reports delivery status (https; http only on loopback).',
      }),
    ),
    endpoint: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        description: `Base URL of a Twilio-compatible API (default ${DEFAULT_SMS_ENDPOINT}), or "sandbox" for Herald's stand-in.`,
      }),
    ),
    timeout_ms: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 60_000,
        description: 'Give up on a request after this long (default 10,000).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type SmsCredentials = Static<typeof SmsCredentials>;

const ACCOUNT_SID = /^AC[0-9a-f]{32}$/i;
const SERVICE_SID = /^MG[0-9a-f]{32}$/i;
const AUTH_TOKEN = /^[\x21-\x7e]{32}$/; // printable ASCII: it travels in a Basic auth header
const E164 = /^\+[1-9]\d{1,14}$/;

/** A valid phone number written exactly in E.164 form (validated like `$phone_number`). */
export function isE164(value: string): boolean {
  return E164.test(value) && parsePhoneNumberFromString(value)?.isValid() === true;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * A URL Herald may send the auth token to, or have the provider call back: https, or plain http
 * only on loopback (a local gateway, the sandbox), where the secret never crosses a network.
 */
function secureUrl(value: string): URL | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.username || url.password || url.hash) return null;
  if (url.protocol === 'https:') return url;
  return url.protocol === 'http:' && isLoopback(url.hostname) ? url : null;
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** Checks SMS credentials beyond their shape and normalises them. Messages never echo a secret. */
export function validateSmsCredentials(
  raw: unknown,
): { ok: true; credentials: SmsCredentials } | { ok: false; problems: CredentialProblem[] } {
  const c = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const problems: CredentialProblem[] = [];
  const problem = (path: string, code: string, message: string) => problems.push({ path, code, message });

  const accountSid = str(c.account_sid) ?? '';
  if (!ACCOUNT_SID.test(accountSid))
    problem('/account_sid', 'INVALID_ACCOUNT_SID', 'must be "AC" followed by 32 hexadecimal digits');
  const authToken = str(c.auth_token) ?? '';
  if (!AUTH_TOKEN.test(authToken))
    problem('/auth_token', 'INVALID_AUTH_TOKEN', 'must be the 32-character auth token of the account');

  const from = str(c.from);
  const service = str(c.messaging_service_sid);
  if (from === undefined && service === undefined) {
    problem('/from', 'MISSING_SENDER', 'give a sender number (from) or a messaging_service_sid');
  } else if (from !== undefined && service !== undefined) {
    problem(
      '/messaging_service_sid',
      'CONFLICTING_SENDER',
      'give either from or messaging_service_sid, not both',
    );
  }
  if (from !== undefined && !isE164(from)) {
    problem('/from', 'INVALID_PHONE_NUMBER', 'must be a valid phone number in E.164 form, like +14155550100');
  }
  if (service !== undefined && !SERVICE_SID.test(service)) {
    problem(
      '/messaging_service_sid',
      'INVALID_MESSAGING_SERVICE_SID',
      'must be "MG" followed by 32 hexadecimal digits',
    );
  }

  const callback = str(c.status_callback_url);
  if (callback !== undefined && !secureUrl(callback)) {
    problem(
      '/status_callback_url',
      'INVALID_URL',
      'must be an https URL (http only on loopback), without user info or fragment',
    );
  }
  const endpoint = str(c.endpoint);
  let base: URL | null = null;
  if (endpoint !== undefined && endpoint !== 'sandbox') {
    base = secureUrl(endpoint);
    if (!base || base.search)
      problem(
        '/endpoint',
        'INVALID_URL',
        'must be "sandbox" or an https base URL (http only on loopback), without query',
      );
  }
  if (problems.length > 0) return { ok: false, problems };

  const credentials: SmsCredentials = { account_sid: accountSid, auth_token: authToken };
  if (from !== undefined) credentials.from = from;
  if (service !== undefined) credentials.messaging_service_sid = service;
  if (callback !== undefined) credentials.status_callback_url = callback;
  if (endpoint !== undefined) credentials.endpoint = base ? base.href.replace(/\/+$/, '') : endpoint;
  if (typeof c.timeout_ms === 'number') credentials.timeout_ms = c.timeout_ms;
  return { ok: true, credentials };
}
