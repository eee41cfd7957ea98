import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryHerald, SandboxServer } from './support/delivery-crash-processes.ts';
import { errorCode, freePort } from './support/net.ts';
import { tempDir } from './support/temp.ts';

/*
 * Journeys against the real `herald start` and a separate `herald sandbox serve` process (issue 5,
 * part 8; I4, I6):
 *
 *  - downtime: users wait in a journey; Herald is killed and stays down longer than the wait; on
 *    restart, with no manual action, the due step fires (journey "send late") or expires (journey
 *    "expire when late"), and the report says which;
 *  - crash under load: a journey that pushes once per triggering event, 1,500 events from 150 users
 *    arriving at a steady rate (with other ingest alongside), Herald SIGKILLed three times while
 *    they flow; every event acknowledged (202) yields exactly one message (the (enrollment, step)
 *    key), every message reaches the sandbox, and any repeat at the sandbox (same apns-id) is
 *    explained by a kill: its deliveries came from different runs, each but the last killed.
 */
const LEASE_MS = 3_000;

async function api(url: string, key: string, path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST'): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Retries a write until it is acknowledged (202/201/200): Herald may be down or restarting. */
async function acked(url: string, key: string, path: string, body: unknown, deadlineMs = 120_000): Promise<any> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    let status = 'none';
    try {
      const r = await api(url, key, path, body);
      if (r.status >= 200 && r.status < 300) return r.body;
      status = String(r.status);
      assert.ok(r.status === 503 || r.status === 429, `${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
    } catch (error) {
      status = errorCode(error);
    }
    if (Date.now() > until) throw new Error(`${path} not acknowledged before the deadline (last: ${status})`);
    await sleep(200);
  }
}

const tokenOf = (name: string): string => createHash('sha256').update(`journey-crash-${name}`).digest('hex');

describe('journeys with real processes: downtime and SIGKILL (I4, I6)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  async function setUp(): Promise<{ herald: DeliveryHerald; sandbox: SandboxServer }> {
    const tmp = tempDir('herald-journey-crash-');
    cleanups.push(async () => tmp.remove());
    const sandbox = await SandboxServer.start(`${tmp.dir}/sandbox`, 1_000_000);
    cleanups.push(() => sandbox.kill());
    const herald = new DeliveryHerald({ dataDir: `${tmp.dir}/herald`, port: await freePort(), sandboxUrl: sandbox.url, env: { HERALD_DELIVERY_LEASE_MS: String(LEASE_MS) } });
    cleanups.push(() => herald.kill());
    await herald.start();
    return { herald, sandbox };
  }

  /** The demo project's secret key, once its whole line is in the first run's output. */
  async function keyOf(herald: DeliveryHerald): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const key = /secret key:\s+(sk_\S+)\s/.exec(herald.output)?.[1];
      if (key) return key;
      await sleep(50);
    }
    throw new Error(`no secret key in the output:\n${herald.output}`);
  }

  const journey = (name: string, entry: string, steps: unknown[], extra: Record<string, unknown> = {}) => ({ type: 'journey', name, entry: { event: entry }, steps, ...extra });

  async function activate(url: string, key: string, body: unknown): Promise<string> {
    const created = await api(url, key, '/v1/automations', body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const on = await api(url, key, `/v1/automations/${created.body.id}/activate`, {});
    assert.equal(on.status, 200, JSON.stringify(on.body));
    return created.body.id as string;
  }

  it('after downtime longer than a wait, due steps fire (or expire, per policy) with no manual action', { timeout: 180_000 }, async () => {
    const { herald, sandbox } = await setUp();
    const key = await keyOf(herald);
    const late = await activate(herald.url, key, journey('late but sent', 'ping_send', [{ id: 'w', type: 'wait', duration: '4s', next: 's' }, { id: 's', type: 'send', channel: 'push', content: { title: 'late but sent' } }]));
    const stale = await activate(
      herald.url,
      key,
      journey('stale', 'ping_expire', [{ id: 'w', type: 'wait', duration: '4s', next: 's' }, { id: 's', type: 'send', channel: 'push', content: { title: 'stale' } }], { freshness: { late_after: '2s', on_late: 'expire' } }),
    );
    for (const who of ['dt-a', 'dt-b']) {
      await acked(herald.url, key, '/v1/installations', { install_id: `${who}-ios`, custom_id: who, platform: 'ios', push_token: tokenOf(who), push_enabled: true });
    }
    await acked(herald.url, key, '/v1/profiles/update', [
      { identifiers: { custom_id: 'dt-a' }, events: [{ name: 'ping_send', id: 'dt-a-1' }] },
      { identifiers: { custom_id: 'dt-b' }, events: [{ name: 'ping_expire', id: 'dt-b-1' }] },
    ]);
    // Both users are inside, waiting; then Herald dies and stays down past the wait and the lateness limit.
    for (const id of [late, stale]) {
      for (let i = 0; ; i++) {
        const r = await api(herald.url, key, `/v1/automations/${id}/report`);
        if (r.body.enrollments?.waiting === 1) break;
        assert.ok(i < 100, `the user never entered ${id}: ${JSON.stringify(r.body)}`);
        await sleep(100);
      }
    }
    await herald.kill();
    await sleep(9_000);
    const restartedAt = Date.now();
    await herald.start();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const a = await api(herald.url, key, `/v1/automations/${late}/report`);
      const b = await api(herald.url, key, `/v1/automations/${stale}/report`);
      if (a.body.messages?.counts?.sent === 1 && b.body.enrollments?.expired === 1) {
        assert.equal(b.body.steps.find((s: { id: string }) => s.id === 'w').outcomes.expired, 1, 'the report says the step expired');
        break;
      }
      assert.ok(Date.now() < deadline, `due steps did not run after the restart: ${JSON.stringify([a.body, b.body])}`);
      await sleep(250);
    }
    const pushes = await sandbox.deliveries('apns', 1000);
    assert.deepEqual(pushes.map((d) => d.to), [tokenOf('dt-a')], 'the late step was sent once; the stale one expired, nothing sent');
    assert.ok(pushes[0]!.receivedAt >= restartedAt, 'sent by the restarted Herald, after the downtime');
    assert.equal(herald.unexpectedExits.length, 0, herald.output.slice(-3000));
  });

  it('a journey under load across 3 SIGKILLs: one message per acknowledged trigger, each delivered; repeats only from kills', { timeout: 420_000 }, async () => {
    const { herald, sandbox } = await setUp();
    const key = await keyOf(herald);
    const users = 150;
    const events = 1_500;
    for (let u = 0; u < users; u += 50) {
      const batch = Array.from({ length: Math.min(50, users - u) }, (_, k) => u + k);
      await Promise.all(batch.map((i) => acked(herald.url, key, '/v1/installations', { install_id: `jc-${i}`, custom_id: `jc-u${i}`, platform: 'ios', push_token: tokenOf(`u${i}`), push_enabled: true })));
    }
    const id = await activate(herald.url, key, journey('per event', 'jc_ping', [{ id: 's', type: 'send', channel: 'push', category: 'transactional', content: { title: 'ping', body: '{{ data.seq }}' } }], { re_entry: { policy: 'always' } }));
    await sleep(1_500);

    // Triggers at ~50/s with unrelated profile updates alongside; kills while they flow.
    const runId = randomBytes(3).toString('hex');
    let sent = 0;
    const producer = (async () => {
      for (let seq = 0; seq < events; seq += 10) {
        const items = Array.from({ length: 10 }, (_, k) => ({
          identifiers: { custom_id: `jc-u${(seq + k) % users}` },
          attributes: { last_seq: seq + k },
          events: [{ name: 'jc_ping', id: `${runId}-${seq + k}`, attributes: { seq: seq + k } }, { name: 'noise', attributes: { n: seq } }],
        }));
        await acked(herald.url, key, '/v1/profiles/update', items);
        sent += items.length;
        await sleep(200);
      }
    })();
    for (const share of [0.2, 0.5, 0.8]) {
      while (sent < events * share) await sleep(50);
      await herald.kill();
      await sleep(500);
      await herald.start();
    }
    await producer;

    const deadline = Date.now() + 180_000;
    let report: any;
    for (;;) {
      report = (await api(herald.url, key, `/v1/automations/${id}/report`)).body;
      const c = report.messages?.counts ?? {};
      if ((c.sent ?? 0) + (c.failed ?? 0) >= events && !c.queued && !c.sending) break;
      assert.ok(Date.now() < deadline, `not settled: ${JSON.stringify(report)}`);
      await sleep(500);
    }
    assert.equal(report.messages.counts.sent, events, 'one message per acknowledged trigger, each sent');
    assert.equal(report.steps[0].outcomes.sent, events, 'the send step ran once per event');

    // At the sandbox: every seq arrived at its user's device; repeats are explained by kills.
    const deliveries = await sandbox.deliveries('apns', 1_000_000);
    const bySeq = new Map<number, typeof deliveries>();
    for (const d of deliveries) {
      const body = (d.body as { aps?: { alert?: { body?: string } } }).aps?.alert?.body;
      const seq = Number(body);
      assert.ok(Number.isInteger(seq) && seq >= 0 && seq < events, `unexpected push body ${body}`);
      assert.equal(d.to, tokenOf(`u${seq % users}`), `seq ${seq} went to the wrong device`);
      bySeq.set(seq, [...(bySeq.get(seq) ?? []), d]);
    }
    assert.equal(bySeq.size, events, 'every trigger reached the sandbox');
    let repeats = 0;
    for (const [seq, list] of bySeq) {
      if (list.length === 1) continue;
      repeats += list.length - 1;
      const runs = list.map((d) => herald.runAt(d.receivedAt));
      assert.equal(new Set(runs).size, runs.length, `seq ${seq} was delivered twice by the same run: a duplicate outside the crash window`);
      for (const r of runs.slice(0, -1)) assert.equal(herald.runs[r - 1]!.end, 'SIGKILL', `seq ${seq}: an earlier delivery came from run ${r}, which was not killed`);
      assert.equal(new Set(list.map((d) => d.headers['apns-id'])).size, 1, 'a repeat carries the same apns-id');
    }
    console.log(`journey crash: ${events} triggers, ${herald.kills} kills, ${repeats} repeated deliveries (the documented window)`);
    assert.equal(herald.unexpectedExits.length, 0, herald.output.slice(-3000));
  });
});
