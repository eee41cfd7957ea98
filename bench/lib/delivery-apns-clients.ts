/**
 * The two APNs clients the delivery benchmark compares Herald with, both sending the same
 * notifications (same path, headers, payload and a valid ES256 provider token) to the same
 * sandbox stand-in:
 *  - rawApnsRun: the raw limit — one node:http2 session, a fixed window of streams in flight,
 *    nothing else (no outbox, no flow control, no bookkeeping beyond counting answers);
 *  - nodeApnRun: the peer — @parse/node-apn's Provider, pointed at the stand-in's cleartext
 *    HTTP/2 (h2c) port through the `createConnection` option it passes to http2.connect.
 */
import { randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { createRequire } from 'node:module';
import { importPKCS8, SignJWT } from 'jose';
import type * as NodeApn from '@parse/node-apn';

export interface ApnsKey {
  teamId: string;
  keyId: string;
  /** PKCS#8 PEM of the P-256 key, as a .p8 file holds it. */
  privateKeyPem: string;
  topic: string;
}

export interface ApnsRunResult {
  sent: number;
  /** Answers other than 200 (or no answer), by status / error. */
  errors: Record<string, number>;
  elapsed_ms: number;
  per_s: number;
  /** Request → answer, per notification. */
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  window: number;
}

/** The payload Herald builds for `message: {title, body}` (apns-payload.ts). */
export function alertPayload(title: string, body: string): string {
  return JSON.stringify({ aps: { alert: { title, body } } });
}

/** The ES256 provider token APNs wants: header alg + kid, claims iss (team) + iat. */
export async function providerToken(key: ApnsKey): Promise<string> {
  const pk = await importPKCS8(key.privateKeyPem, 'ES256');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.keyId })
    .setIssuer(key.teamId)
    .setIssuedAt()
    .sign(pk);
}

function percentiles(values: Float64Array, n: number): ApnsRunResult['latency_ms'] {
  const sorted = values.subarray(0, n).sort();
  const at = (p: number): number => (n === 0 ? NaN : Math.round(sorted[Math.min(n - 1, Math.floor(p * n))]! * 100) / 100);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

/**
 * The raw limit: `count` POST /3/device/<token> on one HTTP/2 session with `window` streams in
 * flight, the headers Herald sends (authorization, apns-id, apns-topic, apns-push-type,
 * apns-priority) and the same payload.
 */
export async function rawApnsRun(options: {
  origin: string;
  key: ApnsKey;
  tokens: readonly string[];
  count: number;
  window: number;
  payload: string;
}): Promise<ApnsRunResult> {
  const jwt = await providerToken(options.key);
  const session = http2.connect(options.origin);
  session.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  const authorization = `bearer ${jwt}`;
  const latencies = new Float64Array(options.count);
  const errors: Record<string, number> = {};
  let started = 0;
  let finished = 0;
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const launch = (): void => {
      const i = started++;
      const begin = performance.now();
      const stream = session.request({
        ':method': 'POST',
        ':path': `/3/device/${options.tokens[i % options.tokens.length]!}`,
        authorization,
        'apns-id': randomUUID(),
        'apns-topic': options.key.topic,
        'apns-push-type': 'alert',
        'apns-priority': '10',
      });
      let status = 0;
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('error', (error: Error & { code?: string }) => {
        status = -1;
        errors[error.code ?? 'error'] = (errors[error.code ?? 'error'] ?? 0) + 1;
      });
      stream.resume();
      stream.on('close', () => {
        latencies[finished] = performance.now() - begin;
        finished++;
        if (status === 200) sent++;
        else if (status !== -1) errors[String(status)] = (errors[String(status)] ?? 0) + 1;
        if (started < options.count) launch();
        else if (finished === options.count) resolve();
      });
      stream.end(options.payload);
    };
    for (let i = 0; i < Math.min(options.window, options.count); i++) launch();
  });
  const elapsed = performance.now() - t0;
  session.close();
  return {
    sent,
    errors,
    elapsed_ms: Math.round(elapsed),
    per_s: Math.round((sent / elapsed) * 1000),
    latency_ms: percentiles(latencies, finished),
    window: options.window,
  };
}

const require = createRequire(import.meta.url);

/**
 * The peer: @parse/node-apn 8 sending the same notifications. Its Client calls
 * `http2.connect('https://<address>', config)` with the whole Provider configuration as the options,
 * so a `createConnection` option (Node's http2.connect option, documented there) hands it a plain
 * TCP socket to the stand-in and it speaks HTTP/2 with prior knowledge (h2c), with no TLS. One
 * Notification per message (its own apns-id, like Herald's), `window` sends in flight through one
 * Provider (one HTTP/2 session), awaited the way an application awaits `provider.send`.
 */
export async function nodeApnRun(options: {
  origin: string;
  key: ApnsKey;
  tokens: readonly string[];
  count: number;
  window: number;
  title: string;
  body: string;
}): Promise<ApnsRunResult & { version: string }> {
  const apn = require('@parse/node-apn') as typeof NodeApn;
  const version = (require('@parse/node-apn/package.json') as { version: string }).version;
  const url = new URL(options.origin);
  const providerOptions: NodeApn.ProviderOptions & { createConnection: () => net.Socket } = {
    token: { key: options.key.privateKeyPem, keyId: options.key.keyId, teamId: options.key.teamId },
    production: false,
    address: url.hostname,
    port: Number(url.port),
    requestTimeout: 30_000,
    createConnection: () => net.connect(Number(url.port), url.hostname),
  };
  const provider = new apn.Provider(providerOptions);
  const latencies = new Float64Array(options.count);
  const errors: Record<string, number> = {};
  let started = 0;
  let finished = 0;
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const launch = (): void => {
      const i = started++;
      const note = new apn.Notification();
      note.id = randomUUID();
      note.topic = options.key.topic;
      note.pushType = 'alert';
      note.priority = 10;
      note.alert = { title: options.title, body: options.body };
      const begin = performance.now();
      void provider.send(note, options.tokens[i % options.tokens.length]!).then(
        (result) => {
          if (result.sent.length === 1) sent++;
          for (const f of result.failed) {
            const key = f.status !== undefined ? String(f.status) : (f.error?.message ?? 'error').slice(0, 60);
            errors[key] = (errors[key] ?? 0) + 1;
          }
        },
        (error: unknown) => {
          errors[String(error).slice(0, 60)] = (errors[String(error).slice(0, 60)] ?? 0) + 1;
        },
      ).finally(() => {
        latencies[finished] = performance.now() - begin;
        finished++;
        if (started < options.count) launch();
        else if (finished === options.count) resolve();
      });
    };
    for (let i = 0; i < Math.min(options.window, options.count); i++) launch();
  });
  const elapsed = performance.now() - t0;
  await provider.shutdown();
  return {
    sent,
    errors,
    elapsed_ms: Math.round(elapsed),
    per_s: Math.round((sent / elapsed) * 1000),
    latency_ms: percentiles(latencies, finished),
    window: options.window,
    version,
  };
}
