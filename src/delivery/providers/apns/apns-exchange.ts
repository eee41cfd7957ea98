import http2 from 'node:http2';

/** What APNs answered on one stream. */
export interface ApnsAnswer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** Why a request got no answer; always worth retrying (the apns-id makes a repeat recognisable). */
export class ApnsTransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One 'abort' listener per signal however many sends share it (a dispatcher's shutdown signal,
 * say), so a thousand streams in flight do not pile a thousand listeners onto it.
 */
export class AbortFanout {
  readonly #handlers = new WeakMap<AbortSignal, Set<() => void>>();

  /** Calls `handler` once if `signal` aborts; the returned function stops watching. */
  watch(signal: AbortSignal, handler: () => void): () => void {
    let handlers = this.#handlers.get(signal);
    if (!handlers) {
      const set = new Set<() => void>();
      handlers = set;
      this.#handlers.set(signal, set);
      signal.addEventListener(
        'abort',
        () => {
          this.#handlers.delete(signal);
          for (const h of set) h();
        },
        { once: true },
      );
    }
    const own = handlers;
    own.add(handler);
    return () => own.delete(handler);
  }
}

export interface ExchangeHooks {
  /** Where abort handlers are registered. */
  aborts: AbortFanout;
  streamTimeoutMs: number;
  /** The stream is closed (answered, reset or abandoned): its slot is free. Called exactly once. */
  onClosed: () => void;
  /** The stream timed out or was abandoned: the connection may be dead. */
  onSilent: () => void;
}

const { NGHTTP2_CANCEL } = http2.constants;

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'NETWORK_ERROR';
}

/** One request/answer on one HTTP/2 stream of `session`. */
export function exchange(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: string,
  signal: AbortSignal,
  hooks: ExchangeHooks,
): Promise<ApnsAnswer> {
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(headers);
  } catch (error) {
    // The session went away between the slot and the request (ERR_HTTP2_GOAWAY_SESSION, …).
    hooks.onClosed();
    return Promise.reject(new ApnsTransportError(codeOf(error), (error as Error).message));
  }
  return new Promise<ApnsAnswer>((resolve, reject) => {
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (outcome: { answer: ApnsAnswer } | { error: ApnsTransportError }) => {
      if (settled) return;
      settled = true;
      unwatch();
      if ('answer' in outcome) resolve(outcome.answer);
      else reject(outcome.error);
    };
    const giveUp = (message: string) => {
      settle({ error: new ApnsTransportError('TIMEOUT', message) });
      // RST_STREAM CANCEL: APNs may still have delivered it; a retry carries the same apns-id.
      if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      hooks.onSilent();
    };
    const unwatch = hooks.aborts.watch(signal, () => giveUp('the send was aborted before APNs answered'));
    stream.setTimeout(hooks.streamTimeoutMs, () => giveUp(`no answer from APNs within ${hooks.streamTimeoutMs} ms`));
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => settle({ answer: { status, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') } }));
    stream.on('error', (error: Error) => settle({ error: new ApnsTransportError(codeOf(error), error.message) }));
    stream.on('close', () => {
      hooks.onClosed();
      if (settled) return;
      // A reset stream, a GOAWAY that refused it or a dropped connection: no answer came.
      settle({ error: new ApnsTransportError('STREAM_CLOSED', `the stream closed without a complete answer (HTTP/2 code ${stream.rstCode})`) });
    });
    stream.end(body);
  });
}
