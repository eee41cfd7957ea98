import net from 'node:net';
import { Type, type Static } from 'typebox';
import type { CredentialProblem } from '../../provider.ts';

export const SmtpCredentialsSchema = Type.Object(
  {
    host: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 253,
        description: 'The SMTP server: a host name or IP address. Not needed with endpoint "sandbox".',
      }),
    ),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65_535,
        description: 'Default 465 with secure, else 587 (submission with STARTTLS).',
      }),
    ),
    secure: Type.Optional(
      Type.Boolean({
        description:
          'Implicit TLS from the first byte (port 465). When false, STARTTLS is used if the server offers it.',
      }),
    ),
    require_tls: Type.Optional(
      Type.Boolean({
        description:
          'Refuse to send unless STARTTLS succeeds. Defaults to true when a password is set, so it never travels in clear text.',
      }),
    ),
    username: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 320,
        description: 'SMTP AUTH user (PLAIN/LOGIN); together with password.',
      }),
    ),
    password: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'SMTP AUTH password; together with username.',
      }),
    ),
    from: Type.Object(
      {
        email: Type.String({ minLength: 3, maxLength: 254, description: 'The default sender address.' }),
        name: Type.Optional(Type.String({ maxLength: 200, description: 'The default sender display name.' })),
      },
      { additionalProperties: false },
    ),
    reply_to: Type.Optional(
      Type.String({ minLength: 3, maxLength: 254, description: 'The default Reply-To address.' }),
    ),
    timeout_ms: Type.Optional(
      Type.Integer({
        minimum: 1_000,
        maximum: 120_000,
        description: 'Give up on one message after this long (default 30,000).',
      }),
    ),
    endpoint: Type.Optional(
      Type.Literal('sandbox', {
        description: '"sandbox" delivers to the Herald sandbox SMTP server instead of host/port.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type SmtpCredentials = Static<typeof SmtpCredentialsSchema>;

/** Implicit TLS (RFC 8314) listens on 465; 587 (submission) and 25 (relay) start in clear text and upgrade with STARTTLS. */
export const IMPLICIT_TLS_PORT = 465;
export const SUBMISSION_PORT = 587;

// RFC 1123 host name labels: letters, digits and inner hyphens, 1 to 63 characters.
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function isHostName(host: string): boolean {
  if (net.isIP(host) !== 0) return true;
  const labels = host.replace(/\.$/, '').split('.');
  return labels.every((label) => LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/**
 * An address a server will take in MAIL FROM / RCPT TO and a From header: a local part without
 * spaces, angle brackets or controls, "@", and a host name. Deliberately stricter than RFC 5321
 * (no quoted local parts, no address literals): those are legal but almost never intended.
 */
export function isEmailAddress(address: string): boolean {
  if (address.length > 254) return false;
  const at = address.lastIndexOf('@');
  if (at < 1 || at > 64) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  return (
    /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+$/.test(local) &&
    !local.startsWith('.') &&
    !local.endsWith('.') &&
    !local.includes('..') &&
    domain.includes('.') &&
    net.isIP(domain) === 0 &&
    isHostName(domain.normalize('NFC').replace(/[^\x00-\x7f]/g, 'a'))
  );
}

function has<T>(value: T | undefined | null): value is T {
  return value !== undefined && value !== null && value !== '';
}

/**
 * Checks what the schema cannot (a sender address a server will take, a host name, a port, user
 * and password together, a TLS mode that matches the port) and returns the credentials with the
 * defaults filled in. Messages never repeat the username or password.
 */
export function validateSmtpCredentials(
  raw: unknown,
): { ok: true; credentials: SmtpCredentials } | { ok: false; problems: CredentialProblem[] } {
  const c = raw as SmtpCredentials;
  const problems: CredentialProblem[] = [];
  const problem = (path: string, code: string, message: string): void =>
    void problems.push({ path, code, message });
  const sandbox = c.endpoint === 'sandbox';

  const fromEmail = typeof c.from?.email === 'string' ? c.from.email.trim() : '';
  if (!isEmailAddress(fromEmail))
    problem('/from/email', 'INVALID_EMAIL', 'must be an email address such as news@example.com');
  const fromName = typeof c.from?.name === 'string' ? c.from.name.trim() : undefined;
  if (fromName !== undefined && /[\r\n\0]/.test(fromName))
    problem('/from/name', 'INVALID_NAME', 'must be one line of text');
  const replyTo = typeof c.reply_to === 'string' ? c.reply_to.trim() : undefined;
  if (replyTo !== undefined && !isEmailAddress(replyTo))
    problem('/reply_to', 'INVALID_EMAIL', 'must be an email address');

  const host = typeof c.host === 'string' ? c.host.trim().toLowerCase() : undefined;
  if (!sandbox) {
    if (!has(host))
      problem(
        '/host',
        'MISSING_HOST',
        'is required (the SMTP server to send through) unless endpoint is "sandbox"',
      );
    else if (!isHostName(host))
      problem('/host', 'INVALID_HOST', 'must be a host name or IP address, without a scheme or port');
  }
  const secure = c.secure === true;
  const port = c.port ?? (secure ? IMPLICIT_TLS_PORT : SUBMISSION_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    problem('/port', 'INVALID_PORT', 'must be a whole number from 1 to 65535');
  else if (!sandbox && secure && (port === 25 || port === SUBMISSION_PORT)) {
    problem(
      '/secure',
      'TLS_MODE_MISMATCH',
      `port ${port} starts in clear text and upgrades with STARTTLS; set secure to false`,
    );
  } else if (!sandbox && !secure && port === IMPLICIT_TLS_PORT) {
    problem('/secure', 'TLS_MODE_MISMATCH', 'port 465 expects TLS from the first byte; set secure to true');
  }

  const username = has(c.username) ? c.username : undefined;
  const password = has(c.password) ? c.password : undefined;
  if (username !== undefined && password === undefined)
    problem('/password', 'MISSING_PASSWORD', 'is required when username is set');
  if (password !== undefined && username === undefined)
    problem('/username', 'MISSING_USERNAME', 'is required when password is set');

  if (problems.length > 0) return { ok: false, problems };
  const credentials: SmtpCredentials = { port, secure, from: { email: fromEmail } };
  if (fromName) credentials.from.name = fromName;
  if (host) credentials.host = host;
  if (username !== undefined && password !== undefined) {
    credentials.username = username;
    credentials.password = password;
  }
  // A password must not cross the network in clear text unless the operator says so explicitly.
  credentials.require_tls = c.require_tls ?? (password !== undefined && !secure);
  if (replyTo !== undefined) credentials.reply_to = replyTo;
  if (c.timeout_ms !== undefined) credentials.timeout_ms = c.timeout_ms;
  if (sandbox) credentials.endpoint = 'sandbox';
  return { ok: true, credentials };
}
