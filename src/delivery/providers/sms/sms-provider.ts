import type { DeliveryRequest, SendOutcome, SmsContent } from '../../delivery-model.ts';
import { permanent, recipientInvalid, retryable, retryAfterMs, sent } from '../../delivery-model.ts';
import type { ProviderContext, ProviderDefinition } from '../../provider.ts';
import { resolveEndpoint } from '../../provider.ts';
import { DEFAULT_SMS_ENDPOINT, SmsCredentials, isE164, validateSmsCredentials } from './sms-credentials.ts';
import { countSegments } from './sms-segments.ts';

export { SmsCredentials } from './sms-credentials.ts';

const DEFAULT_TIMEOUT_MS = 10_000;
/** Twilio: ValidityPeriod is whole seconds from 1 to 36,000 (the queue's 10-hour maximum). */
const MAX_VALIDITY_SECONDS = 36_000;

/** A Twilio REST error body: `{code, message, more_info, status}`. */
interface TwilioError {
  code?: number;
  message?: string;
}

function parseError(text: string): TwilioError {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return {};
    const { code, message } = value as Record<string, unknown>;
    return {
      ...(typeof code === 'number'
        ? { code }
        : typeof code === 'string' && /^\d+$/.test(code)
          ? { code: Number(code) }
          : {}),
      ...(typeof message === 'string' ? { message: message.slice(0, 300) } : {}),
    };
  } catch {
    return {};
  }
}

function parseSid(text: string): string | null {
  try {
    const value: unknown = JSON.parse(text);
    const sid =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>).sid : undefined;
    return typeof sid === 'string' && sid.length > 0 ? sid : null;
  } catch {
    return null;
  }
}

/** Maps a non-2xx answer of the Messages API to an outcome, by Twilio error code first. */
export function smsErrorOutcome(
  status: number,
  error: TwilioError,
  retryAfter: string | null,
  nowMs: number,
): SendOutcome {
  const code = error.code === undefined ? `HTTP_${status}` : String(error.code);
  const said = `the SMS provider answered ${status}${error.code === undefined ? '' : ` (error ${error.code})`}${error.message ? `: ${error.message}` : ''}`;
  // Twilio 21610: the number replied STOP; sending again is refused until it replies START.
  if (error.code === 21610) return recipientInvalid(code, said, 'unsubscribe-sms');
  // Twilio 20429 / HTTP 429: over the account's concurrency; not processed, safe to retry later.
  if (status === 429 || error.code === 20429) return retryable(code, said, retryAfterMs(retryAfter, nowMs));
  if (status === 401 || error.code === 20003) {
    return permanent(
      code,
      `the SMS provider rejected the account SID or auth token (${status}${error.code === undefined ? '' : `, error ${error.code}`})`,
    );
  }
  if (status === 408 || status >= 500) return retryable(code, said, retryAfterMs(retryAfter, nowMs));
  // 21211 (invalid 'To'), 21614 (not a mobile number), 21617 (body too long) and the rest of 4xx:
  // the same request would fail again.
  return permanent(code, said);
}

function networkOutcome(error: unknown, callerSignal: AbortSignal, timeoutMs: number): SendOutcome {
  if (callerSignal.aborted)
    return retryable('ABORTED', 'the send was aborted before the SMS provider answered');
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError')
    return retryable('TIMEOUT', `the SMS provider did not answer within ${timeoutMs} ms`);
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : 'NETWORK';
  const message = typeof cause?.message === 'string' ? cause.message : (error as Error).message;
  return retryable(code, `could not reach the SMS provider: ${message}`);
}

/** Whole seconds left before `expiresAt`, capped at Twilio's maximum; 0 when already past. */
function validitySeconds(expiresAt: number, nowMs: number): number {
  return Math.min(MAX_VALIDITY_SECONDS, Math.max(0, Math.floor((expiresAt - nowMs) / 1000)));
}

/** The create-message form: recipient, body, the configured sender and status callback. */
function messageForm(credentials: SmsCredentials, to: string, body: string): URLSearchParams {
  const form = new URLSearchParams({ To: to, Body: body });
  if (credentials.from !== undefined) form.set('From', credentials.from);
  if (credentials.messaging_service_sid !== undefined)
    form.set('MessagingServiceSid', credentials.messaging_service_sid);
  if (credentials.status_callback_url !== undefined)
    form.set('StatusCallback', credentials.status_callback_url);
  return form;
}

/**
 * SMS through a Twilio-compatible Messages API: POST a form to
 * `/2010-04-01/Accounts/{AccountSid}/Messages.json` with Basic auth. 201 means queued at the
 * provider; the message SID is kept as the provider id, with the segment count and encoding Herald
 * computed. Twilio has no idempotency key on message creation, so a retry after a lost answer (a
 * timeout, a dropped connection) can send twice: that is I4's documented window. A 2xx whose body
 * is lost still counts as sent, so that window is not widened.
 */
export const smsProvider: ProviderDefinition<SmsCredentials> = {
  kind: 'sms',
  label: 'SMS (Twilio-compatible Messages API)',
  channel: 'sms',
  credentialsSchema: SmsCredentials,
  // Twilio queues accepted messages per sender (10 hours at most); the API's limit is concurrency
  // (100 requests in flight per account, 20429 beyond), so leave room for other users of the account.
  limits: { ratePerSecond: 100, maxConcurrency: 50 },
  validate: validateSmsCredentials,
  create(credentials, context: ProviderContext) {
    const base = resolveEndpoint(credentials.endpoint ?? DEFAULT_SMS_ENDPOINT, 'sms', context).replace(
      /\/+$/,
      '',
    );
    const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(credentials.account_sid)}/Messages.json`;
    const authorization = `Basic ${Buffer.from(`${credentials.account_sid}:${credentials.auth_token}`).toString('base64')}`;
    const timeoutMs = credentials.timeout_ms ?? DEFAULT_TIMEOUT_MS;

    return {
      async send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome> {
        if (!isE164(request.to))
          return permanent('INVALID_PHONE_NUMBER', 'the recipient is not a valid phone number in E.164 form');
        const { body } = request.content as SmsContent;
        const form = messageForm(credentials, request.to, body);
        if (request.expiresAt !== null) {
          // The provider drops the message if it is still queued when it goes stale (freshness, I6).
          const seconds = validitySeconds(request.expiresAt, context.clock.now());
          if (seconds < 1)
            return permanent('EXPIRED', 'the message expired before it could be handed to the SMS provider');
          form.set('ValidityPeriod', String(seconds));
        }
        const { segments, encoding } = countSegments(body);

        let response: Response;
        let text: string;
        try {
          response = await fetch(url, {
            method: 'POST',
            headers: {
              authorization,
              'content-type': 'application/x-www-form-urlencoded',
              accept: 'application/json',
              'user-agent': 'Herald-SMS/1',
            },
            body: form.toString(),
            redirect: 'manual',
            signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
          });
        } catch (error) {
          return networkOutcome(error, signal, timeoutMs);
        }
        try {
          text = await response.text();
        } catch (error) {
          // The status line arrived: a 2xx means the message is queued, whatever happened to the body.
          if (response.ok) return sent(null, { segments, encoding });
          return networkOutcome(error, signal, timeoutMs);
        }
        if (response.ok) return sent(parseSid(text), { segments, encoding });
        if (response.status >= 300 && response.status < 400) {
          return permanent(
            `HTTP_${response.status}`,
            'the SMS provider answered a redirect; check the endpoint',
          );
        }
        return smsErrorOutcome(
          response.status,
          parseError(text),
          response.headers.get('retry-after'),
          context.clock.now(),
        );
      },
      close: () => Promise.resolve(),
    };
  },
};
