import type http from 'node:http';

/** A Twilio REST error: the HTTP status and the documented error code with its message. */
export interface TwilioFailure {
  status: number;
  code: number | string;
  message: string;
  retryAfterSeconds?: number;
}

/** Messages of the Twilio error codes the stand-in answers (wording of Twilio's error catalogue). */
const KNOWN: Record<string, string> = {
  '20003': 'Authenticate',
  '20004': 'Method not allowed',
  '20404': 'The requested resource was not found',
  '20429': 'Too Many Requests',
  '20500': 'An internal server error has occurred',
  '20503': 'Service unavailable',
  '21211': "Invalid 'To' Phone Number",
  '21212': "Invalid 'From' Phone Number",
  '21602': 'Message body is required.',
  '21603': "A 'From' phone number is required.",
  '21604': "A 'To' phone number is required.",
  '21609': "Invalid 'StatusCallback'",
  '21610': 'Attempt to send to unsubscribed recipient',
  '21614': "'To' number is not a valid mobile number",
  '21617': 'The concatenated message body exceeds the 1600 character limit.',
  '21624': 'Invalid validity period value',
};

export function failure(status: number, code: number | string, message?: string): TwilioFailure {
  return { status, code, message: message ?? KNOWN[String(code)] ?? `Error ${code}` };
}

/** Writes the error body Twilio answers: `{code, message, more_info, status}`. */
export function sendFailure(res: http.ServerResponse, f: TwilioFailure): void {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (f.retryAfterSeconds !== undefined) headers['retry-after'] = String(f.retryAfterSeconds);
  if (f.status === 401) headers['www-authenticate'] = 'Basic realm="Twilio API"';
  const body = {
    code: f.code,
    message: f.message,
    more_info: `https://www.twilio.com/docs/errors/${f.code}`,
    status: f.status,
  };
  res.writeHead(f.status, headers).end(JSON.stringify(body));
}

/** The status and code a misbehaviour rule asks for: `reason` is the Twilio error code. */
export function ruleFailure(rule: {
  status?: number;
  reason?: string;
  retryAfterSeconds?: number;
}): TwilioFailure {
  const status = rule.status ?? 400;
  const fallback =
    status === 429 ? 20429 : status === 401 ? 20003 : status === 503 ? 20503 : status >= 500 ? 20500 : status;
  const code =
    rule.reason === undefined ? fallback : /^\d+$/.test(rule.reason) ? Number(rule.reason) : rule.reason;
  const f = failure(status, code);
  return rule.retryAfterSeconds === undefined ? f : { ...f, retryAfterSeconds: rule.retryAfterSeconds };
}

const E164 = /^\+[1-9]\d{1,14}$/;
/** A number, a short code, or an alphanumeric sender ID (letters required, at most 11). */
const SENDER = /^(\+[1-9]\d{1,14}|\d{3,8}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$/;

/** The create-message fields, read from the form the way Twilio does. */
export interface MessageForm {
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  statusCallback: string | null;
  validityPeriod: number | null;
}

/** Validates a create-message form like the Messages API, in the order it reports errors. */
export function readMessageForm(form: URLSearchParams): MessageForm | TwilioFailure {
  const to = form.get('To') ?? '';
  if (!to) return failure(400, 21604);
  if (!E164.test(to)) return failure(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
  const from = form.get('From') || null;
  const messagingServiceSid = form.get('MessagingServiceSid') || null;
  if (!from && !messagingServiceSid) return failure(400, 21603);
  if (from && !SENDER.test(from))
    return failure(
      400,
      21212,
      `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`,
    );
  const body = form.get('Body') ?? '';
  if (!body) return failure(400, 21602);
  // Twilio's limit is in characters; a code point is one character however it is encoded.
  if ([...body].length > 1600) return failure(400, 21617);
  const statusCallback = form.get('StatusCallback') || null;
  if (statusCallback !== null && !/^https?:\/\/[^\s/]+/.test(statusCallback)) return failure(400, 21609);
  const validity = form.get('ValidityPeriod');
  const validityPeriod = validity === null ? null : Number(validity);
  if (
    validityPeriod !== null &&
    (!/^\d+$/.test(validity ?? '') || validityPeriod < 1 || validityPeriod > 36_000)
  )
    return failure(400, 21624);
  return { to, from, messagingServiceSid, body, statusCallback, validityPeriod };
}

/** Reads `Authorization: Basic` into its user and password. */
export function basicAuth(header: string | undefined): { user: string; password: string } | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Twilio's date format (RFC 2822 with a numeric zone). */
export function twilioDate(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}
