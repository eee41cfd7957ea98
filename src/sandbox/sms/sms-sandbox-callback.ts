import { createHmac } from 'node:crypto';
import type { Logger } from '../../core/logger.ts';

/** How long after accepting a message the stand-in reports it delivered. */
const CALLBACK_DELAY_MS = 20;
const CALLBACK_TIMEOUT_MS = 5_000;

/**
 * Signs like Twilio, written here independently of Herald's verifier: HMAC-SHA1 with the auth
 * token over the callback URL followed by each parameter's name and value, sorted by name.
 */
function sign(authToken: string, url: string, params: URLSearchParams): string {
  const names = [...params.keys()].sort();
  let data = url;
  for (const name of names) data += name + (params.get(name) ?? '');
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/**
 * Posts status callbacks a little after a message is accepted, like Twilio reports delivery.
 * Best effort: a callback that fails is logged and dropped; it never affects the send.
 */
export class StatusCallbacks {
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inFlight = new Set<AbortController>();

  constructor(private readonly logger: Logger) {}

  /** Schedules one callback; `beforePost` runs just before it goes out (to update the resource). */
  schedule(url: string, authToken: string, params: URLSearchParams, beforePost: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      beforePost();
      void this.#post(url, authToken, params);
    }, CALLBACK_DELAY_MS);
    this.#timers.add(timer);
  }

  async #post(url: string, authToken: string, params: URLSearchParams): Promise<void> {
    const abort = new AbortController();
    this.#inFlight.add(abort);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'user-agent': 'TwilioProxy/1.1',
          'x-twilio-signature': sign(authToken, url, params),
        },
        body: params.toString(),
        redirect: 'manual',
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(CALLBACK_TIMEOUT_MS)]),
      });
      await res.arrayBuffer();
      if (!res.ok)
        this.logger.debug({ status: res.status }, 'sms sandbox: status callback answered an error');
    } catch (error) {
      this.logger.debug({ err: (error as Error).message }, 'sms sandbox: status callback failed');
    } finally {
      this.#inFlight.delete(abort);
    }
  }

  /** Cancels pending and in-flight callbacks (the sandbox is stopping). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const abort of this.#inFlight) abort.abort();
  }
}
