import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import type { ActiveRule, RunningService, SandboxContext, SandboxService } from '../sandbox-model.ts';
import { applyDelay } from '../sandbox-model.ts';

/** Largest message the stand-in takes (announced with SIZE, RFC 1870); above it answers 552. */
const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/**
 * Reply texts for rules without a reason, with the RFC 3463 enhanced code a real server would send
 * (the stand-in writes enhanced codes itself, so a rule's reason can carry its own, e.g. "5.7.1 …").
 */
const DEFAULT_REPLY: Record<number, string> = {
  421: '4.3.2 Service not available, closing transmission channel',
  450: '4.2.1 Mailbox unavailable, try again later',
  451: '4.3.0 Local error in processing, try again later',
  452: '4.2.2 Insufficient system storage',
  550: '5.1.1 Mailbox unavailable: no such user',
  551: '5.1.6 User not local',
  552: '5.2.2 Mailbox full',
  553: '5.1.3 Mailbox name not allowed',
  554: '5.6.0 Transaction failed',
};

function smtpError(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

function equalSecrets(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Header lines as sent, one entry per name (repeated ones joined), folding undone. */
function rawHeaders(parsed: ParsedMail): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const { key, line } of parsed.headerLines) {
    const value = line
      .slice(line.indexOf(':') + 1)
      .replace(/\r?\n[ \t]+/g, ' ')
      .trim();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  return headers;
}

function addressText(value: AddressObject | AddressObject[] | undefined): string {
  if (!value) return '';
  return (Array.isArray(value) ? value : [value]).map((a) => a.text).join(', ');
}

/** Per connection: what a rule decided at RCPT TO that only takes effect at the end of DATA. */
interface SessionState {
  abort: AbortController;
  /** RFC 5321 allows 554 only as the answer to the message (end of DATA), never to RCPT TO. */
  dataRejection: { code: number; text: string } | null;
}

/**
 * An SMTP server (RFC 5321) that takes mail for any address, parses it (mailparser) and records one
 * message per recipient with its headers, parsed body and MIME source. It checks AUTH PLAIN/LOGIN
 * against the users registered in trust (kind "smtp", id = username, {password}) and requires it
 * once any user is registered; with none, anyone may send. Behaviour rules for a recipient apply at
 * RCPT TO: a 4xx/5xx status refuses that recipient with the rule's reason (554, which RFC 5321 only
 * allows after DATA, refuses the message instead), `hang` never answers, `delayMs` answers late.
 * No STARTTLS: it listens on loopback only, in plain text.
 */
export const smtpSandbox: SandboxService = {
  kind: 'smtp',
  channel: 'email',
  async start(ctx: SandboxContext): Promise<RunningService> {
    const sessions = new Map<string, SessionState>();
    const stateOf = (session: SMTPServerSession): SessionState => {
      let state = sessions.get(session.id);
      if (!state) {
        state = { abort: new AbortController(), dataRejection: null };
        sessions.set(session.id, state);
      }
      return state;
    };

    const server = new SMTPServer({
      logger: false,
      name: 'sandbox.herald.invalid',
      banner: 'Herald sandbox SMTP',
      disabledCommands: ['STARTTLS'],
      authMethods: ['PLAIN', 'LOGIN'],
      // Whether AUTH is required depends on what trust holds when the mail arrives: see onMailFrom.
      authOptional: true,
      allowInsecureAuth: true,
      disableReverseLookup: true,
      size: MAX_MESSAGE_BYTES,
      rejectOversized: true,
      closeTimeout: 1_000,

      onAuth(auth, _session, callback) {
        const expected =
          auth.username === undefined ? undefined : ctx.trust.get('smtp', auth.username)?.password;
        if (
          expected !== undefined &&
          typeof auth.password === 'string' &&
          equalSecrets(auth.password, expected)
        ) {
          return callback(null, { user: auth.username });
        }
        callback(null, { responseCode: 535, message: '5.7.8 Authentication credentials invalid' });
      },

      onMailFrom(_address: SMTPServerAddress, session, callback) {
        // A new transaction: nothing decided for an earlier one (ended by RSET) carries over.
        stateOf(session).dataRejection = null;
        if (ctx.trust.all('smtp').length > 0 && !session.user) {
          return callback(smtpError(530, '5.7.0 Authentication required'));
        }
        callback();
      },

      onRcptTo(address: SMTPServerAddress, session, callback) {
        const rule: ActiveRule | undefined = ctx.behaviors.match('smtp', address.address);
        const state = stateOf(session);
        void applyDelay(rule, state.abort.signal).then(() => {
          if (rule?.hang || state.abort.signal.aborted) return;
          const status = rule?.status;
          if (status === undefined || status < 400 || status > 599) return callback();
          const text =
            rule?.reason ??
            DEFAULT_REPLY[status] ??
            (status >= 500 ? '5.0.0 Rejected by a sandbox rule' : '4.0.0 Deferred by a sandbox rule');
          if (status === 554) {
            state.dataRejection = { code: status, text };
            return callback();
          }
          callback(smtpError(status, text));
        });
      },

      onData(stream: SMTPServerDataStream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          void (async () => {
            const state = stateOf(session);
            const rejection = state.dataRejection;
            state.dataRejection = null;
            if (rejection) return callback(smtpError(rejection.code, rejection.text));
            // rejectOversized answers 552 itself; such a message must not show up as received.
            if (stream.sizeExceeded) return callback(smtpError(552, '5.3.4 Message too big'));
            const raw = Buffer.concat(chunks);
            let parsed: ParsedMail;
            try {
              // skipHtmlToText: record the text part the sender wrote, never one made up here.
              parsed = await simpleParser(raw, {
                skipHtmlToText: true,
                skipTextToHtml: true,
                skipImageLinks: true,
                skipTextLinks: true,
              });
            } catch {
              return callback(smtpError(554, '5.6.0 The message could not be parsed as MIME'));
            }
            // RFC 5322 §3.6: Date and From are the two header fields every message must have.
            if (!parsed.headers.has('date') || !parsed.from) {
              return callback(
                smtpError(554, '5.6.0 A message needs a Date and a From header (RFC 5322 section 3.6)'),
              );
            }
            const queueId = randomBytes(6).toString('hex').toUpperCase();
            record(ctx, session, parsed, raw.toString('utf8'), queueId);
            callback(null, `OK: queued as ${queueId}`);
          })();
        });
      },

      onClose(session) {
        const state = sessions.get(session.id);
        state?.abort.abort();
        sessions.delete(session.id);
      },
    });
    // A client dropping its connection (a pool closing, a send given up on) is routine, not a warning.
    server.on('error', (error) => ctx.logger.debug({ err: error.message }, 'sandbox smtp: connection error'));

    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(ctx.portFor('smtp'), ctx.host, () => resolve());
    });
    const { port } = server.server.address() as AddressInfo;
    return {
      endpoint: `smtp://${ctx.host}:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          for (const state of sessions.values()) state.abort.abort();
          server.close(() => resolve());
        }),
    };
  },
};

/** One record per accepted recipient of the transaction. */
function record(
  ctx: SandboxContext,
  session: SMTPServerSession,
  parsed: ParsedMail,
  raw: string,
  queueId: string,
): void {
  const headers = rawHeaders(parsed);
  // Decoded forms for reading; the raw (possibly RFC 2047 encoded) header stays in `raw`.
  if (parsed.subject !== undefined) headers.subject = parsed.subject;
  headers.from = addressText(parsed.from);
  headers.to = addressText(parsed.to);
  const body = {
    subject: parsed.subject ?? '',
    from: parsed.from?.value[0]?.address ?? '',
    to: addressText(parsed.to),
    html: parsed.html === false ? null : (parsed.html ?? null),
    text: parsed.text ?? null,
    envelope: {
      mailFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
    },
    /** The id in our "250 OK: queued as <id>" answer, which the sender keeps as its provider id. */
    queueId,
    /** The SMTP connection it came over: how many messages share one shows connection reuse. */
    session: session.id,
  };
  for (const recipient of session.envelope.rcptTo) {
    ctx.recorder.record({ kind: 'smtp', channel: 'email', to: recipient.address, headers, body, raw });
  }
}
