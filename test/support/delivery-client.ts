import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import type { TestApp } from './test-app.ts';

/**
 * Helpers for the delivery tests: they drive a real Herald only through its HTTP API (sends,
 * messages, profiles, the sandbox's view of what arrived), the way a user would.
 */

export type Res = { status: number; body: any; headers: Headers };

/** A user-facing terminal state (I4); `queued` and `sending` are live. */
export const TERMINAL = ['sent', 'failed', 'expired', 'suppressed', 'capped', 'cancelled'] as const;
export const STATES = ['queued', 'sending', ...TERMINAL] as const;

/** Generous: a busy 2-core machine runs two suites side by side. No test asserts speed. */
export const SETTLE_DEADLINE_MS = 90_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const uid = (): string => randomBytes(5).toString('hex');
/** An APNs device token: 64 hexadecimal characters. */
export const iosToken = (): string => randomBytes(32).toString('hex');
/** An FCM registration token (`[A-Za-z0-9_:.-]{20,}`). */
export const fcmToken = (): string => `fcm:${randomBytes(18).toString('base64url')}`;

/** Calls the API with another key (another project's, or none). */
export async function callAs(
  h: TestApp,
  key: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<Res> {
  const res = await fetch(h.url + path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Creates or updates one profile; answers its ingest id. */
export async function putProfile(
  h: TestApp,
  customId: string,
  attributes: Record<string, unknown>,
): Promise<string> {
  const res = await h.api('POST', '/v1/profiles/update', [
    { identifiers: { custom_id: customId }, attributes },
  ]);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.ingest_id as string;
}

export async function putInstallation(h: TestApp, body: Record<string, unknown>): Promise<string> {
  const res = await h.api('POST', '/v1/installations', { push_enabled: true, ...body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.ingest_id as string;
}

/** A subscription from the sandbox's pretend browser, ready to be an installation's `web_push`. */
export async function webSubscription(
  h: TestApp,
): Promise<{ endpoint: string; keys: { p256dh: string; auth: string } }> {
  const res = await h.api('POST', '/v1/sandbox/webpush/subscriptions');
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

/** A profile with an iOS installation; answers its token. */
export async function iosProfile(
  h: TestApp,
  customId: string,
  attributes: Record<string, unknown> = {},
): Promise<string> {
  const token = iosToken();
  await putProfile(h, customId, attributes);
  await putInstallation(h, {
    install_id: `ios-${customId}`,
    custom_id: customId,
    platform: 'ios',
    push_token: token,
  });
  return token;
}

export async function readProfile(h: TestApp, customId: string, waitFor?: string): Promise<any> {
  const res = await h.api(
    'GET',
    `/v1/profiles/${encodeURIComponent(customId)}${waitFor ? `?wait_for=${waitFor}` : ''}`,
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

export interface Sent {
  sendId: string;
  ingestId: string;
  res: Res;
}

/** POST /v1/send, expecting 201 `{send_id, ingest_id}`. */
export async function send(
  h: TestApp,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Sent> {
  const res = await h.api('POST', '/v1/send', body, headers);
  assert.equal(res.status, 201, `POST /v1/send answered ${res.status}: ${JSON.stringify(res.body)}`);
  assert.match(res.body.send_id, /^snd_/);
  assert.match(res.body.ingest_id, /^ing_/);
  return { sendId: res.body.send_id, ingestId: res.body.ingest_id, res };
}

/**
 * Every count of a send report adds up to `targeted` (I4); with `listed`, the messages listed agree
 * with the counts. (GET /v1/sends reads counts and messages separately, so while messages still
 * move the two may disagree for a moment: compare them once the send has settled.)
 */
export function assertCountsAddUp(report: any, options: { listed?: boolean } = { listed: true }): void {
  assert.deepEqual(Object.keys(report.counts).sort(), [...STATES].sort(), 'counts has one entry per state');
  const sum = STATES.reduce((n, s) => n + (report.counts[s] as number), 0);
  assert.equal(
    sum,
    report.targeted,
    `counts ${JSON.stringify(report.counts)} add up to targeted ${report.targeted}`,
  );
  if (options.listed && report.next_cursor === null) {
    assert.equal(report.messages.length, report.targeted, 'every targeted message is listed');
    for (const state of STATES) {
      assert.equal(
        report.messages.filter((m: any) => m.state === state).length,
        report.counts[state],
        `the ${state} count matches the listed messages`,
      );
    }
  }
}

/**
 * Polls GET /v1/sends/{id} until no message is queued or sending (and `until`, if given, holds),
 * checking at every look that the counts add up. Answers the last report.
 */
export async function settle(
  h: TestApp,
  sent: Sent,
  options: { deadlineMs?: number; until?: (report: any) => boolean; minTargeted?: number } = {},
): Promise<any> {
  const deadline = Date.now() + (options.deadlineMs ?? SETTLE_DEADLINE_MS);
  let last: any;
  let first = true;
  while (Date.now() < deadline) {
    const res = await h.api(
      'GET',
      `/v1/sends/${sent.sendId}?limit=1000${first ? `&wait_for=${sent.ingestId}` : ''}`,
    );
    first = false;
    if (res.status === 200) {
      last = res.body;
      assertCountsAddUp(last, { listed: false });
      const live = last.counts.queued + last.counts.sending;
      if (live === 0 && last.targeted >= (options.minTargeted ?? 1) && (options.until?.(last) ?? true)) {
        assertCountsAddUp(last);
        return last;
      }
    } else {
      assert.equal(res.status, 404, `GET /v1/sends answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    await sleep(150);
  }
  assert.fail(`send ${sent.sendId} did not settle in time; last report: ${JSON.stringify(last?.counts)}`);
}

/** Every message of a user, newest first, with its history. */
export async function messagesOf(h: TestApp, customId: string): Promise<any[]> {
  const res = await h.api('GET', `/v1/messages?custom_id=${encodeURIComponent(customId)}&limit=500`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.messages as any[];
}

/** Every message of a send, with its history (GET /v1/messages?send_id=). */
export async function messagesOfSend(h: TestApp, sendId: string): Promise<any[]> {
  const res = await h.api('GET', `/v1/messages?send_id=${encodeURIComponent(sendId)}&limit=500`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.messages as any[];
}

/** The history entries of retried attempts: the provider answered, and the message went back to the queue. */
export function retries(message: any): any[] {
  return (message.history as any[]).filter((e) => e.state === 'queued' && e.code !== null);
}

/** The only message a report holds for one recipient (custom_id, install_id or recipient). */
export function messageFor(report: any, who: string): any {
  const found = report.messages.filter(
    (m: any) => m.custom_id === who || m.install_id === who || m.recipient === who,
  );
  assert.equal(
    found.length,
    1,
    `exactly one message for ${who} in ${JSON.stringify(report.messages.map((m: any) => [m.custom_id, m.state]))}`,
  );
  return found[0];
}

/** What the sandbox received, newest first (via GET /v1/sandbox/messages). */
export async function arrived(
  h: TestApp,
  filter: { channel?: string; kind?: string; to?: string; limit?: number },
): Promise<any[]> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
  if (!q.has('limit')) q.set('limit', '1000');
  const res = await h.api('GET', `/v1/sandbox/messages?${q.toString()}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.messages as any[];
}

export async function misbehave(h: TestApp, rule: Record<string, unknown>): Promise<void> {
  const res = await h.api('POST', '/v1/sandbox/behaviors', rule);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

export async function behave(h: TestApp): Promise<void> {
  const res = await h.api('DELETE', '/v1/sandbox/behaviors');
  assert.equal(res.status, 204);
}

/** The webhook receiver URL the demo project is wired to (`sandbox:/hooks/<project id>`). */
export function demoWebhookUrl(h: TestApp): string {
  return `${h.app.sandbox!.endpoints.webhook}/hooks/${h.projectId}`;
}

/** Verifies a Standard Webhooks v1 signature, independently of Herald's signer and of the sandbox's check. */
export function standardWebhookSignatureValid(
  secret: string,
  headers: Record<string, string>,
  body: string,
): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key)
    .update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`)
    .digest('base64');
  return (headers['webhook-signature'] ?? '').split(' ').some((s) => s === `v1,${expected}`);
}

/** A 400 with a named code; answers the details. */
export function assertRejected(
  res: Res,
  expect: { status?: number; code?: string; detailCode?: string; path?: string },
): any[] {
  const status = expect.status ?? 400;
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body?.error?.code, 'string', 'a machine-readable code');
  assert.match(res.body.error.code, /^[A-Z][A-Z0-9_]+$/);
  assert.ok(
    typeof res.body.error.message === 'string' && res.body.error.message.length > 0,
    'a human sentence',
  );
  if (expect.code) assert.equal(res.body.error.code, expect.code, JSON.stringify(res.body));
  const details: any[] = res.body.error.details ?? [];
  if (expect.path !== undefined || expect.detailCode !== undefined) {
    const hit = details.find(
      (d) =>
        (expect.path === undefined || d.path === expect.path) &&
        (expect.detailCode === undefined || d.code === expect.detailCode),
    );
    assert.ok(
      hit,
      `a detail ${JSON.stringify({ path: expect.path, code: expect.detailCode })} in ${JSON.stringify(res.body.error)}`,
    );
    assert.ok(typeof hit.message === 'string' && hit.message.length > 0);
  }
  return details;
}
