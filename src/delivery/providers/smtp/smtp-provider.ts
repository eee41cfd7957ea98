import nodemailer from 'nodemailer';
import type { SendMailOptions } from 'nodemailer';
import type { DeliveryRequest, EmailAddress, EmailContent, SendOutcome } from '../../delivery-model.ts';
import { recipientInvalid } from '../../delivery-model.ts';
import type { ProviderContext, ProviderDefinition } from '../../provider.ts';
import { resolveEndpoint } from '../../provider.ts';
import { htmlToText } from './html-to-text.ts';
import { SmtpCredentialsSchema, validateSmtpCredentials, type SmtpCredentials } from './smtp-credentials.ts';
import { outcomeOfSmtpError, outcomeOfSmtpSuccess } from './smtp-outcome.ts';

export type { SmtpCredentials } from './smtp-credentials.ts';

/** A connection is replaced after this many messages, which bounds what one stuck session can hold up. */
const MESSAGES_PER_CONNECTION = 100;
const DEFAULT_TIMEOUT_MS = 30_000;

/** Where to connect: the configured server, or the sandbox stand-in (plain text on loopback). */
function target(
  credentials: SmtpCredentials,
  context: ProviderContext,
): { host: string; port: number; sandbox: boolean } {
  if (credentials.endpoint === 'sandbox') {
    // The stand-in announces itself as smtp://127.0.0.1:<port>.
    const url = new URL(resolveEndpoint('sandbox', 'smtp', context));
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), sandbox: true };
  }
  return { host: credentials.host ?? '', port: credentials.port ?? 587, sandbox: false };
}

function createTransport(credentials: SmtpCredentials, context: ProviderContext, maxConnections: number) {
  const { host, port, sandbox } = target(credentials, context);
  return nodemailer.createTransport({
    pool: true,
    maxConnections,
    maxMessages: MESSAGES_PER_CONNECTION,
    host,
    port,
    // The sandbox speaks plain text on loopback and offers no STARTTLS.
    secure: sandbox ? false : credentials.secure === true,
    requireTLS: sandbox ? false : credentials.require_tls === true,
    ignoreTLS: sandbox,
    ...(credentials.username !== undefined && credentials.password !== undefined
      ? { auth: { user: credentials.username, pass: credentials.password } }
      : {}),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
    dnsTimeout: 10_000,
    // Never log: the SMTP transcript holds the AUTH exchange (I10).
    logger: false,
    debug: false,
    // Message content comes from templates: it must never make us read a file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
}

/** One addr-spec and nothing else: no list separators, display names, comments or whitespace. */
function isSingleAddress(to: string): boolean {
  return /^[^\s,;<>()"\\@]+@[^\s,;<>()"\\@]+$/.test(to) && !/[\u0000-\u001f\u007f]/.test(to);
}

/** `<uuid@domain>`: stable across retries (the message id is), so a duplicate delivery is recognisable (I4). */
function messageIdFor(request: DeliveryRequest, from: EmailAddress): string {
  const domain = from.email.slice(from.email.lastIndexOf('@') + 1).toLowerCase();
  return `<${request.messageId}@${domain}>`;
}

/** RFC 8058 one-click unsubscribe needs an https URI; anything else gets neither header. */
function unsubscribeUrl(request: DeliveryRequest): string | null {
  if (request.category !== 'marketing' || !request.unsubscribeUrl) return null;
  try {
    const url = new URL(request.unsubscribeUrl);
    return url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Builds the nodemailer message for one request. */
function mailFor(
  request: DeliveryRequest,
  credentials: SmtpCredentials,
  nowMs: number,
): SendMailOptions & { messageId: string } {
  const content = request.content as EmailContent;
  const from = content.from ?? credentials.from;
  const replyTo = content.replyTo ?? credentials.reply_to;
  const mail: SendMailOptions & { messageId: string } = {
    from: from.name ? { name: from.name, address: from.email } : from.email,
    to: request.to,
    subject: content.subject,
    html: content.html,
    text: content.text ?? htmlToText(content.html),
    messageId: messageIdFor(request, from),
    date: new Date(nowMs),
    xMailer: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  if (replyTo) mail.replyTo = replyTo;
  const unsubscribe = unsubscribeUrl(request);
  if (unsubscribe) {
    // RFC 8058 §3.1: List-Unsubscribe with the https URI, and List-Unsubscribe-Post saying a POST
    // to it unsubscribes in one click. Only marketing mail: transactional mail has no list to leave.
    mail.list = { unsubscribe };
    mail.headers = { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' };
  }
  return mail;
}

/**
 * Email over SMTP (RFC 5321) through a pool of reused connections (nodemailer), so a campaign pays
 * for the TCP/TLS handshake and AUTH once per connection, not once per message. HTML mail carries
 * a generated text part; marketing mail carries RFC 8058 one-click unsubscribe headers.
 * A 5xx to RCPT TO naming the mailbox is a hard bounce (the address is suppressed), other 5xx a
 * permanent failure, 4xx and lost connections a retry.
 */
export const smtpProvider: ProviderDefinition<SmtpCredentials> = {
  kind: 'smtp',
  label: 'Email (SMTP)',
  channel: 'email',
  credentialsSchema: SmtpCredentialsSchema,
  // SMTP has no universal quota; relays start around 10-100 messages/s (e.g. SES sandbox 1/s,
  // production 14/s and up). Connections: many servers refuse more than ~10 from one client.
  limits: { ratePerSecond: 100, maxConcurrency: 10 },
  validate: validateSmtpCredentials,
  create(credentials, context, limits) {
    const transport = createTransport(credentials, context, (limits ?? smtpProvider.limits).maxConcurrency);
    const timeoutMs = credentials.timeout_ms ?? DEFAULT_TIMEOUT_MS;
    return {
      async send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome> {
        if (!isSingleAddress(request.to)) {
          // nodemailer reads "to" as an address list: a comma or a display name would add recipients.
          return recipientInvalid(
            'INVALID_ADDRESS',
            'the recipient is not a single email address',
            'suppress-address',
          );
        }
        const mail = mailFor(request, credentials, context.clock.now());
        // One controller per send, its timer cleared when the send ends: at thousands of messages
        // a second, AbortSignal.timeout would leave a live timer per message for timeoutMs.
        const controller = new AbortController();
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs);
        const forward = (): void => controller.abort();
        if (signal.aborted) controller.abort();
        else signal.addEventListener('abort', forward, { once: true });
        try {
          // The signal reaches the pool: a send given up on leaves the queue, or its connection is closed.
          const info = await transport.sendMail({ ...mail, signal: controller.signal });
          return outcomeOfSmtpSuccess(info, mail.messageId);
        } catch (error) {
          return outcomeOfSmtpError(error, timedOut || signal.aborted);
        } finally {
          clearTimeout(timer);
          signal.removeEventListener('abort', forward);
        }
      },
      close() {
        // Idle connections end now (QUIT); one in the middle of a message finishes it first.
        transport.close();
        return Promise.resolve();
      },
    };
  },
};
