import http2 from 'node:http2';
import type { Logger } from '../../../core/logger.ts';
import { AbortFanout, ApnsTransportError, exchange, type ApnsAnswer } from './apns-exchange.ts';

export { ApnsTransportError, type ApnsAnswer } from './apns-exchange.ts';

export interface ApnsConnectionOptions {
  /** Give up on a stream that has been silent this long, and on a connection not ready by then. */
  streamTimeoutMs: number;
  /** After a stream times out, a PING must be acknowledged within this long or the session is dropped. */
  pingTimeoutMs: number;
  /** Observes each new HTTP/2 session (tests count them). */
  onSession?: () => void;
}

/** One HTTP/2 session and the streams it may still open. */
interface LiveSession {
  session: http2.ClientHttp2Session;
  /** The server's SETTINGS arrived, so its stream limit is known. */
  ready: boolean;
  dead: boolean;
  inFlight: number;
  waiters: Set<(granted: boolean) => void>;
  /** Why it died, reported when a request could not get a stream anywhere. */
  error: ApnsTransportError | undefined;
  probing: boolean;
}

/**
 * One long-lived HTTP/2 session to APNs, shared by every request (Apple: keep connections open
 * and multiplex; do not open one per notification). Streams beyond the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS wait for a free slot — APNs starts a connection at one stream
 * and raises the limit later, and refuses streams above it. A session that received GOAWAY,
 * failed or closed is forgotten; waiting requests and later ones go to a new session.
 */
export class ApnsConnection {
  #live: LiveSession | undefined;
  #closed = false;
  readonly #aborts = new AbortFanout();

  constructor(
    private readonly origin: string,
    private readonly options: ApnsConnectionOptions,
    private readonly logger: Logger,
  ) {}

  /** Sends one request and reads the whole answer. Rejects with ApnsTransportError when there is none. */
  async request(headers: http2.OutgoingHttpHeaders, body: string, signal: AbortSignal): Promise<ApnsAnswer> {
    // A request whose session died before it got a stream was never sent: it may try one more session.
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new ApnsTransportError('CLIENT_CLOSED', 'the APNs client is closed');
      if (signal.aborted) throw new ApnsTransportError('TIMEOUT', 'the send was aborted before it was sent');
      const live = this.#current();
      if (await this.#acquire(live, signal)) {
        return exchange(live.session, headers, body, signal, {
          aborts: this.#aborts,
          streamTimeoutMs: this.options.streamTimeoutMs,
          onClosed: () => this.#release(live),
          onSilent: () => this.#probe(live),
        });
      }
      if (attempt >= 1) throw live.error ?? new ApnsTransportError('NO_CONNECTION', 'the connection to APNs closed before the request was sent');
    }
  }

  #current(): LiveSession {
    const existing = this.#live;
    if (existing && !existing.dead) return existing;
    const session = http2.connect(this.origin);
    const live: LiveSession = { session, ready: false, dead: false, inFlight: 0, waiters: new Set(), error: undefined, probing: false };
    const notReady = setTimeout(() => {
      live.error = new ApnsTransportError('CONNECT_TIMEOUT', `APNs did not complete the HTTP/2 handshake within ${this.options.streamTimeoutMs} ms`);
      session.destroy();
    }, this.options.streamTimeoutMs);
    notReady.unref();
    session.on('remoteSettings', () => {
      clearTimeout(notReady);
      live.ready = true;
      this.#drain(live);
    });
    // APNs sends GOAWAY (with a JSON reason) when it drops a connection; open a new one for what follows.
    session.on('goaway', (code: number) => {
      this.logger.debug({ code }, 'apns: GOAWAY received, reconnecting for new requests');
      this.#bury(live);
    });
    session.on('error', (error: Error & { code?: string }) => {
      this.logger.debug({ err: error.message }, 'apns: session error');
      live.error ??= new ApnsTransportError(error.code ?? 'NETWORK_ERROR', error.message);
      this.#bury(live);
    });
    session.on('close', () => {
      clearTimeout(notReady);
      this.#bury(live);
    });
    this.options.onSession?.();
    this.#live = live;
    return live;
  }

  /** Waits for a stream slot on `live`: true when granted, false when the session died first. */
  #acquire(live: LiveSession, signal: AbortSignal): Promise<boolean> {
    if (live.dead) return Promise.resolve(false);
    if (live.ready && live.inFlight < this.#limit(live)) {
      live.inFlight++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve, reject) => {
      const waiter = (granted: boolean) => {
        unwatch();
        resolve(granted);
      };
      const unwatch = this.#aborts.watch(signal, () => {
        live.waiters.delete(waiter);
        reject(new ApnsTransportError('TIMEOUT', 'the send was aborted while waiting for a free APNs stream'));
      });
      live.waiters.add(waiter);
    });
  }

  #limit(live: LiveSession): number {
    return live.session.remoteSettings.maxConcurrentStreams ?? 100;
  }

  #release(live: LiveSession): void {
    live.inFlight--;
    this.#drain(live);
  }

  #drain(live: LiveSession): void {
    for (const waiter of live.waiters) {
      if (live.dead || !live.ready || live.inFlight >= this.#limit(live)) return;
      live.waiters.delete(waiter);
      live.inFlight++;
      waiter(true);
    }
  }

  /** The session takes no new streams; what waited for one moves on to the next session. */
  #bury(live: LiveSession): void {
    live.dead = true;
    if (this.#live === live) this.#live = undefined;
    const waiters = [...live.waiters];
    live.waiters.clear();
    for (const waiter of waiters) waiter(false);
  }

  /**
   * A stream went silent: the connection may be dead without the socket knowing. A PING that is
   * not acknowledged in time drops the session so later requests reconnect instead of waiting.
   */
  #probe(live: LiveSession): void {
    const { session } = live;
    if (live.dead || live.probing || session.destroyed || session.closed) return;
    live.probing = true;
    const timer = setTimeout(() => {
      this.logger.debug({}, 'apns: PING unanswered, dropping the session');
      session.destroy();
    }, this.options.pingTimeoutMs);
    timer.unref();
    const sent = session.ping((error) => {
      clearTimeout(timer);
      live.probing = false;
      if (error && !session.destroyed) session.destroy();
    });
    if (!sent) {
      clearTimeout(timer);
      live.probing = false;
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    const live = this.#live;
    if (!live) return Promise.resolve();
    this.#bury(live);
    const { session } = live;
    if (session.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      // In-flight streams may finish; a server that keeps them open does not hold shutdown up.
      const timer = setTimeout(() => session.destroy(), 2000);
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      session.close();
    });
  }
}
