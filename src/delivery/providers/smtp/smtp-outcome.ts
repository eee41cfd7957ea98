import type { SendOutcome } from '../../delivery-model.ts';
import { permanent, recipientInvalid, retryable, sent } from '../../delivery-model.ts';

/** What nodemailer attaches to the errors it hands back (see NodemailerError). */
interface SmtpError {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  permanent?: boolean;
  message?: string;
}

/** nodemailer codes for a connection that failed or died: the server may be fine a moment later. */
const CONNECTION_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'EPROXY',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
]);

/**
 * Failures the same message would meet again until someone changes the configuration or the
 * content: no common auth mechanism, no credentials, a bad sender, a server without REQUIRETLS,
 * a message nodemailer refuses to build.
 */
const NEEDS_A_PERSON = new Set([
  'EAUTH',
  'ENOAUTH',
  'EOAUTH2',
  'EENVELOPE',
  'EREQUIRETLS',
  'EMESSAGE',
  'ESTREAM',
  'ECONFIG',
  'EOTP',
  'EMAXRECIPIENTS',
  'EFILEACCESS',
  'EURLACCESS',
]);

/** One line of server text for a message: no controls, bounded, so a hostile reply cannot flood the outbox. */
function replyText(error: SmtpError): string {
  const text = (error.response ?? error.message ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** The RFC 3463 enhanced status code after the reply code ("550 5.1.1 …"), if the server sent one. */
export function enhancedStatus(
  response: string | undefined,
): { klass: number; subject: number; detail: number } | null {
  const match = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)/.exec(response ?? '');
  if (!match) return null;
  return { klass: Number(match[1]), subject: Number(match[2]), detail: Number(match[3]) };
}

/**
 * Whether a permanent RCPT TO rejection says the mailbox itself is bad, so the address should be
 * suppressed. A 5xx to RCPT can also be the server's policy about us (5.7.x: relay denied, we are
 * blocked, auth needed) or its own trouble (5.3.x, 5.4.x, 5.5.x); suppressing every address for
 * those would silently lose the whole list, so they are permanent failures of this message only.
 * RFC 3463: x.1.x are addressing problems (5.1.7 and 5.1.8 are about the sender), 5.2.1 a disabled
 * mailbox. Without an enhanced code, RFC 5321's 550 (mailbox unavailable), 551 (user not local)
 * and 553 (mailbox name not allowed) name the recipient.
 */
function isBadMailbox(responseCode: number, response: string | undefined): boolean {
  const status = enhancedStatus(response);
  if (status)
    return (
      (status.subject === 1 && status.detail !== 7 && status.detail !== 8) ||
      (status.subject === 2 && status.detail === 1)
    );
  return responseCode === 550 || responseCode === 551 || responseCode === 553;
}

/** Maps a failed SMTP transaction to an outcome; a remote answer is never thrown. */
export function outcomeOfSmtpError(raw: unknown, timedOut: boolean): SendOutcome {
  const error = (typeof raw === 'object' && raw !== null ? raw : { message: String(raw) }) as SmtpError;
  if (error.code === 'EABORT' || timedOut) {
    // Aborting does not prove the server did not take the message: the retry may duplicate it (I4).
    return retryable(
      'TIMEOUT',
      'no answer from the SMTP server in time; the message may or may not have been accepted',
    );
  }
  const responseCode = error.responseCode;
  if (typeof responseCode === 'number' && responseCode >= 400) {
    const code = `SMTP_${responseCode}`;
    const text = replyText(error);
    // nodemailer names the step: "RCPT TO", "DATA", "AUTH PLAIN"…, or "CONN" for the greeting/session.
    const command = error.command && error.command !== 'CONN' ? error.command : 'the connection';
    if (responseCode >= 500 && error.command === 'RCPT TO' && isBadMailbox(responseCode, error.response)) {
      // RFC 5321 §4.2.1: 5yz is a permanent negative reply; for RCPT it means this mailbox: a hard bounce.
      return recipientInvalid(code, `the server refused the recipient: ${text}`, 'suppress-address');
    }
    // 503 (bad sequence) is the session's state, not the message: nodemailer marks it not permanent.
    if (responseCode >= 500 && error.permanent !== false)
      return permanent(code, `the server refused ${command}: ${text}`);
    return retryable(code, `the server deferred ${command}: ${text}`);
  }
  const code = error.code ?? 'SMTP_ERROR';
  if (CONNECTION_CODES.has(code))
    return retryable(code, `could not talk to the SMTP server: ${replyText(error)}`);
  if (code === 'EENVELOPE' && error.command === 'API') {
    return recipientInvalid(
      'INVALID_ADDRESS',
      'the recipient is not an address an SMTP server accepts',
      'suppress-address',
    );
  }
  if (NEEDS_A_PERSON.has(code)) return permanent(code, replyText(error) || 'the SMTP transaction failed');
  // Anything else is an outage or a bug on our side: the worker retries it a bounded number of times.
  return retryable(code, replyText(error) || 'the SMTP transaction failed');
}

/** Queue ids as common servers report them: Postfix/smtp-server "queued as X", Exim "id=X", Sendmail "X Message accepted". */
const QUEUE_ID = [
  /\bqueued as\s+<?([^\s<>]+)>?/i,
  /\bid=([^\s]+)/i,
  /^250 2\.0\.0 ([A-Za-z0-9]+) Message accepted/i,
];

/** A sent outcome: the server's queue id when its reply names one, else the id it assigned, else our Message-ID. */
export function outcomeOfSmtpSuccess(
  info: { response?: string; serverMessageId?: string; messageId?: string },
  messageId: string,
): SendOutcome {
  const response = info.response ?? '';
  for (const pattern of QUEUE_ID) {
    const id = pattern.exec(response)?.[1];
    if (id) return sent(id.slice(0, 200));
  }
  return sent(info.serverMessageId ?? info.messageId ?? messageId);
}
