import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dropDatabases, PG_URL, randomDatabaseName, skipWithoutPg } from './support/services.ts';
import { errorCode, freePort } from './support/net.ts';
import { DeliveryHerald, SandboxServer, type SandboxDelivery } from './support/delivery-crash-processes.ts';
import { tempDir } from './support/temp.ts';

/*
 * I4 — each message once, and accounted for: SIGKILL during a large send.
 *
 * A `herald sandbox serve` runs in its own process, so it outlives Herald and counts every APNs
 * request it received (by apns-id, which Herald sets to the message id). The real `herald start`
 * runs against it with a short delivery lease (HERALD_DELIVERY_LEASE_MS), so that messages a killed
 * Herald held come back within seconds. The test gives N profiles one iOS installation each, sends
 * one push to all of them with POST /v1/send, SIGKILLs Herald several times while the messages are
 * being delivered (each time once the sandbox has received a given share of them), restarts it on
 * the same port and data, and waits until nothing is queued or sending. Then, from the outside:
 *
 *   - the send's counts add up to its targeted total, N, and every message is `sent`, with exactly
 *     one `sent` entry in its history;
 *   - one message per installation, each addressed to that installation's token;
 *   - every message reached the sandbox, and nothing reached it that Herald did not create, nor
 *     went to another token or with another text than its message's;
 *   - duplicates (the same apns-id received more than once) are counted and printed. I4's one
 *     documented window is a crash between the provider's answer and our write of it, so each
 *     extra delivery must be explained by a kill: every delivery of a message was made by a
 *     different run of Herald (attributed by time: a run lasts from its spawn to the next spawn),
 *     each run but the last of them was killed, and the run that delivered it last is the run that
 *     recorded it as sent. A message received twice from the same run, or after it was recorded
 *     as sent, is a duplicate outside the window: a bug. The duplicates of each kill are bounded
 *     by what a dispatcher holds at once (DISPATCHER_HOLD).
 *
 * The send is one transactional push with a Liquid body naming the recipient, so a message that
 * reached the wrong device, or the right device with another's text, is caught too.
 */

/** At most this many claimed messages in one dispatcher (Dispatcher's maxLocal): the most a kill can leave undecided. */
const DISPATCHER_HOLD = 5_000;
const LEASE_MS = 3_000;

interface Scenario {
  backend: 'sqlite' | 'postgres';
  messages: number;
  kills: number;
  /** Concurrent POST /v1/installations while loading the data. */
  loaders: number;
  /** How long the final drain may take after the last restart. */
  drainMs: number;
}

const rand = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

async function api(
  url: string,
  key: string,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body };
}

const customIdOf = (i: number): string => `dc-u${i}`;
/** A 64-hex-digit APNs device token, distinct per profile. */
const tokenOf = (i: number): string => createHash('sha256').update(`delivery-crash-token-${i}`).digest('hex');
const expectedBody = (customId: string): string => `Hello ${customId}`;

/** N profiles, each with one iOS installation, through POST /v1/installations (one per request). */
async function loadInstallations(herald: DeliveryHerald, key: string, scenario: Scenario): Promise<void> {
  let next = 0;
  const statuses = new Map<string, number>();
  const loader = async (): Promise<void> => {
    while (next < scenario.messages) {
      const i = next++;
      const body = { install_id: `dc-i${i}`, custom_id: customIdOf(i), platform: 'ios', push_token: tokenOf(i), push_enabled: true };
      for (let attempt = 1; ; attempt++) {
        let status: string;
        try {
          status = String((await api(herald.url, key, '/v1/installations', { method: 'POST', body })).status);
        } catch (error) {
          status = errorCode(error);
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === '202') break;
        assert.ok(
          (status === '503' || status === '429') && attempt < 20,
          `POST /v1/installations answered ${status} (attempt ${attempt}); answers so far ${JSON.stringify(Object.fromEntries(statuses))}`,
        );
        await sleep(250);
      }
    }
  };
  await Promise.all(Array.from({ length: scenario.loaders }, loader));
}

interface SendState {
  targeted: number;
  counts: Record<string, number>;
}

async function sendState(herald: DeliveryHerald, key: string, sendId: string, waitFor?: string): Promise<SendState> {
  const q = waitFor ? `?wait_for=${waitFor}&limit=1` : '?limit=1';
  const r = await api(herald.url, key, `/v1/sends/${sendId}${q}`);
  assert.equal(r.status, 200, `GET /v1/sends/${sendId}: ${JSON.stringify(r.body)}`);
  return { targeted: r.body.targeted, counts: r.body.counts };
}

interface ListedMessage {
  id: string;
  custom_id: string | null;
  install_id: string | null;
  recipient: string;
  state: string;
  reason: string | null;
  attempts: number;
  provider: string | null;
  history?: { at: string; state: string; code: string | null; detail: string | null }[];
}

/** Every message of the send, through GET /v1/sends/{id} (ids) and GET /v1/messages?send_id= (with history). */
async function listMessages(herald: DeliveryHerald, key: string, sendId: string): Promise<{ fromSend: string[]; messages: ListedMessage[] }> {
  const fromSend: string[] = [];
  let cursor: string | null = null;
  do {
    const path: string = `/v1/sends/${sendId}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api(herald.url, key, path);
    assert.equal(page.status, 200, `GET ${path}: ${JSON.stringify(page.body)}`);
    fromSend.push(...(page.body.messages as ListedMessage[]).map((m) => m.id));
    cursor = page.body.next_cursor;
  } while (cursor);
  const messages: ListedMessage[] = [];
  cursor = null;
  do {
    const path: string = `/v1/messages?send_id=${sendId}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api(herald.url, key, path);
    assert.equal(page.status, 200, `GET ${path}: ${JSON.stringify(page.body)}`);
    messages.push(...(page.body.messages as ListedMessage[]));
    cursor = page.body.next_cursor;
  } while (cursor);
  return { fromSend, messages };
}

interface KillRecord {
  kill: number;
  /** Sandbox APNs deliveries when the kill was decided. */
  delivered: number;
  /** The send's counts polled just before the kill. */
  counts: Record<string, number>;
  /**
   * The most deliveries this kill can leave unrecorded: the messages leased (`sending`) at the poll
   * just before it, plus every delivery the sandbox received from that poll on (a message claimed
   * after the poll was delivered after it too).
   */
  inFlight: number;
}

interface Report {
  problems: string[];
  deliveries: number;
  distinct: number;
  /** Extra deliveries (beyond the first) per message delivered more than once. */
  extra: number;
  duplicatedMessages: number;
  /** Extra deliveries explained by the kill that ended run `run`, per run. */
  crashDuplicatesByRun: Map<number, number>;
  /** Extra deliveries with no kill between them and the previous delivery. */
  sameRunDuplicates: number;
  /** Lines describing each duplicated message. */
  duplicateLines: string[];
  /** Deliveries the sandbox received from each run. */
  perRun: Map<number, number>;
}

/** Checks I4 from the outside; returns what it found. */
function verify(
  scenario: Scenario,
  herald: DeliveryHerald,
  kills: KillRecord[],
  state: SendState,
  listing: { fromSend: string[]; messages: ListedMessage[] },
  deliveries: SandboxDelivery[],
): Report {
  const problems: string[] = [];
  const report = (p: string): void => {
    if (problems.length < 40) problems.push(p);
    else if (problems.length === 40) problems.push('… (more problems not shown)');
  };
  const n = scenario.messages;

  // The send's counts add up, and everything was sent.
  const total = Object.values(state.counts).reduce((a, b) => a + b, 0);
  if (state.targeted !== n) report(`targeted = ${state.targeted}, expected ${n}`);
  if (total !== state.targeted) report(`counts ${JSON.stringify(state.counts)} add up to ${total}, not to targeted ${state.targeted}`);
  for (const [s, c] of Object.entries(state.counts)) if (s !== 'sent' && c !== 0) report(`${c} messages are ${s}, expected every message sent (${JSON.stringify(state.counts)})`);

  // One message per installation, addressed to its token; both listings agree.
  const byId = new Map<string, ListedMessage>();
  for (const m of listing.messages) {
    if (byId.has(m.id)) report(`message ${m.id} is listed twice`);
    byId.set(m.id, m);
  }
  if (listing.messages.length !== n) report(`GET /v1/messages?send_id lists ${listing.messages.length} messages, expected ${n}`);
  const fromSend = new Set(listing.fromSend);
  if (listing.fromSend.length !== n || fromSend.size !== n) report(`GET /v1/sends/{id} lists ${listing.fromSend.length} messages (${fromSend.size} distinct), expected ${n}`);
  for (const id of fromSend) if (!byId.has(id)) report(`message ${id} is in GET /v1/sends/{id} but not in GET /v1/messages`);
  const customIdByToken = new Map<string, string>();
  for (let i = 0; i < n; i++) customIdByToken.set(tokenOf(i), customIdOf(i));
  const messagesPerToken = new Map<string, number>();
  for (const m of listing.messages) {
    messagesPerToken.set(m.recipient, (messagesPerToken.get(m.recipient) ?? 0) + 1);
    const owner = customIdByToken.get(m.recipient);
    if (owner === undefined) report(`message ${m.id} goes to ${m.recipient}, which is no installation's token`);
    else if (m.custom_id !== owner) report(`message ${m.id} goes to ${owner}'s token but names profile ${m.custom_id}`);
    if (m.state !== 'sent') report(`message ${m.id} (${m.custom_id}) is ${m.state}: ${m.reason}`);
    if (m.provider !== 'apns') report(`message ${m.id} was sent by ${m.provider}, expected apns`);
    const sentEntries = (m.history ?? []).filter((h) => h.state === 'sent').length;
    const terminal = (m.history ?? []).filter((h) => h.state !== 'queued' && h.state !== 'sending').length;
    if (sentEntries !== 1 || terminal !== 1) report(`message ${m.id} has ${sentEntries} 'sent' and ${terminal} terminal entries in its history: ${JSON.stringify(m.history)}`);
  }
  for (const [token, owner] of customIdByToken) {
    const c = messagesPerToken.get(token) ?? 0;
    if (c !== 1) report(`${owner}'s installation has ${c} messages, expected exactly 1`);
  }

  // What the sandbox received: only Herald's messages, to the right device, with the right text.
  const deliveriesOf = new Map<string, SandboxDelivery[]>();
  for (const d of deliveries) {
    const id = d.headers['apns-id'];
    const m = id === undefined ? undefined : byId.get(id);
    if (!id || !m) {
      report(`the sandbox received a notification Herald did not create: apns-id ${id ?? '(none)'} to ${d.to}`);
      continue;
    }
    if (d.to !== m.recipient) report(`message ${id} was delivered to ${d.to}, but its recipient is ${m.recipient}`);
    const alert = (d.body as { aps?: { alert?: { title?: string; body?: string } } } | null)?.aps?.alert;
    if (alert?.title !== 'Hi' || alert.body !== expectedBody(m.custom_id ?? '?')) {
      report(`message ${id} for ${m.custom_id} arrived with ${JSON.stringify(d.body)}`);
    }
    const list = deliveriesOf.get(id) ?? [];
    list.push(d);
    deliveriesOf.set(id, list);
  }
  for (const m of listing.messages) if (!deliveriesOf.has(m.id)) report(`message ${m.id} (${m.custom_id}) is ${m.state} but never reached the sandbox`);

  // Duplicates: each extra delivery must be explained by a kill (I4's window), and bounded.
  const lastRun = herald.runs.length;
  const crashDuplicatesByRun = new Map<number, number>();
  let sameRunDuplicates = 0;
  let extra = 0;
  let duplicatedMessages = 0;
  const duplicateLines: string[] = [];
  for (const [id, list] of deliveriesOf) {
    const m = byId.get(id)!;
    if (m.attempts < list.length) report(`message ${id} reached the sandbox ${list.length} times but counts ${m.attempts} attempts`);
    if (list.length === 1) continue;
    duplicatedMessages++;
    extra += list.length - 1;
    const runs = list.map((d) => herald.runAt(d.receivedAt));
    const sentAt = m.history?.find((h) => h.state === 'sent')?.at;
    const sentRun = sentAt === undefined ? null : herald.runAt(Date.parse(sentAt));
    const explained: string[] = [];
    for (let i = 0; i + 1 < list.length; i++) {
      if (runs[i] === runs[i + 1]) {
        sameRunDuplicates++;
        explained.push('same run');
        report(
          `message ${id} (${m.custom_id}) reached the sandbox twice from run ${runs[i]} (at +${list[i]!.receivedAt - herald.runs[0]!.spawnedAt} and ` +
            `+${list[i + 1]!.receivedAt - herald.runs[0]!.spawnedAt} ms), with no crash between: a duplicate outside I4's window`,
        );
      } else {
        const run = runs[i]!;
        const ended = herald.runs[run - 1]?.end;
        if (ended !== 'SIGKILL') report(`message ${id} was delivered again after run ${run}, which was not killed (${ended})`);
        crashDuplicatesByRun.set(run, (crashDuplicatesByRun.get(run) ?? 0) + 1);
        explained.push(`kill ${run}`);
      }
    }
    if (sentRun !== runs.at(-1)) {
      report(`message ${id} (${m.custom_id}) was recorded sent in run ${sentRun} (${sentAt}) but last reached the sandbox from run ${runs.at(-1)}`);
    }
    duplicateLines.push(
      `${id} ${m.custom_id}: ${list.length} deliveries from runs [${runs.join(', ')}] at +[${list.map((d) => d.receivedAt - herald.runs[0]!.spawnedAt).join(', ')}] ms; ` +
        `recorded sent in run ${sentRun}; attempts ${m.attempts}; ${explained.join(', ')}`,
    );
  }
  for (const [run, count] of crashDuplicatesByRun) {
    if (count > DISPATCHER_HOLD) report(`the kill of run ${run} left ${count} messages delivered twice, more than a dispatcher holds (${DISPATCHER_HOLD})`);
    const kill = kills.find((k) => k.kill === run);
    if (kill && count > kill.inFlight) {
      report(
        `the kill of run ${run} was followed by ${count} repeated deliveries, but at most ${kill.inFlight} messages were in flight then ` +
          `(${kill.counts.sending ?? 0} sending just before it, plus what the sandbox received from then on): the rest had already lost their lease`,
      );
    }
  }
  const perRun = new Map<number, number>();
  for (const d of deliveries) perRun.set(herald.runAt(d.receivedAt), (perRun.get(herald.runAt(d.receivedAt)) ?? 0) + 1);
  if (lastRun > 0 && crashDuplicatesByRun.has(lastRun)) report(`the last run (${lastRun}) was not killed, yet its deliveries were repeated`);
  return {
    problems,
    deliveries: deliveries.length,
    distinct: deliveriesOf.size,
    extra,
    duplicatedMessages,
    crashDuplicatesByRun,
    sameRunDuplicates,
    duplicateLines,
    perRun,
  };
}

async function runScenario(t: TestContext, scenario: Scenario, herald: DeliveryHerald, sandbox: SandboxServer): Promise<void> {
  const n = scenario.messages;
  await herald.start();
  for (let i = 0; i < 200 && !herald.secretKey; i++) await sleep(50);
  assert.ok(herald.secretKey, `the first start printed a secret key:\n${herald.output}`);
  const key = herald.secretKey;

  const t0 = Date.now();
  await loadInstallations(herald, key, scenario);
  const loadedMs = Date.now() - t0;

  const customIds = Array.from({ length: n }, (_, i) => customIdOf(i));
  const sent = await api(herald.url, key, '/v1/send', {
    method: 'POST',
    headers: { 'idempotency-key': `delivery-crash-${scenario.backend}` },
    body: { recipients: { custom_ids: customIds }, channel: 'push', message: { title: 'Hi', body: expectedBody('{{ profile.custom_id }}') } },
  });
  assert.equal(sent.status, 201, `POST /v1/send: ${JSON.stringify(sent.body)}`);
  const sendId: string = sent.body.send_id;
  const ingestId: string = sent.body.ingest_id;
  const sendAt = Date.now();

  // Materialised (the outbox holds all N) before the first kill, so every kill hits delivery.
  let state = await sendState(herald, key, sendId, ingestId);
  for (const deadline = Date.now() + 120_000; state.targeted < n; state = await sendState(herald, key, sendId, ingestId)) {
    assert.ok(Date.now() < deadline, `the send was not materialised: ${JSON.stringify(state)}`);
  }

  // Each kill once the sandbox has received a given share of the messages (duplicates included),
  // plus a random delay, so the kills land at different points of the stream.
  const kills: KillRecord[] = [];
  for (let k = 1; k <= scenario.kills; k++) {
    const target = Math.floor((n * k) / (scenario.kills + 1));
    const deadline = Date.now() + 120_000;
    let delivered = 0;
    for (;;) {
      delivered = (await sandbox.counts()).apns ?? 0;
      if (delivered >= target) break;
      assert.ok(herald.running, `herald exited on its own:\n${herald.output.slice(-4000)}`);
      assert.ok(Date.now() < deadline, `the sandbox received only ${delivered} of ${target} messages within 120 s: ${JSON.stringify(await sendState(herald, key, sendId))}\n${herald.output.slice(-4000)}`);
      await sleep(50);
    }
    await sleep(rand(0, 300));
    const c0 = (await sandbox.counts()).apns ?? 0;
    const before = await sendState(herald, key, sendId);
    await herald.kill();
    await sleep(200); // requests that were complete when it died are recorded by now
    const c1 = (await sandbox.counts()).apns ?? 0;
    kills.push({ kill: k, delivered, counts: before.counts, inFlight: (before.counts.sending ?? 0) + (c1 - c0) });
    await sleep(rand(0, 500));
    await herald.start();
  }

  // The last run delivers the rest: wait until nothing is queued or sending.
  const drainDeadline = Date.now() + scenario.drainMs;
  for (;;) {
    state = await sendState(herald, key, sendId);
    if ((state.counts.queued ?? 0) === 0 && (state.counts.sending ?? 0) === 0) break;
    assert.ok(herald.running, `herald exited on its own:\n${herald.output.slice(-4000)}`);
    assert.ok(Date.now() < drainDeadline, `the send did not drain within ${scenario.drainMs} ms: ${JSON.stringify(state)}\n${herald.output.slice(-4000)}`);
    await sleep(250);
  }
  const drainedMs = Date.now() - sendAt;
  // Anything still on its way (a late duplicate) arrives within a lease or two: wait until the sandbox is quiet.
  let quietSince = Date.now();
  let lastCount = (await sandbox.counts()).apns ?? 0;
  while (Date.now() - quietSince < 2 * LEASE_MS + 1_000) {
    await sleep(250);
    const c = (await sandbox.counts()).apns ?? 0;
    if (c !== lastCount) {
      lastCount = c;
      quietSince = Date.now();
    }
  }

  const listing = await listMessages(herald, key, sendId);
  const deliveries = await sandbox.deliveries('apns', 1_000_000);
  const counted = (await sandbox.counts()).apns ?? 0;
  const result = verify(scenario, herald, kills, state, listing, deliveries);
  if (deliveries.length !== counted) result.problems.unshift(`the sandbox counted ${counted} APNs requests but kept ${deliveries.length}: raise --keep`);

  const perKill = kills.map((k) => ({
    kill: k.kill,
    at_sandbox_count: k.delivered,
    sending_before: k.counts.sending ?? 0,
    sent_before: k.counts.sent ?? 0,
    in_flight_bound: k.inFlight,
    duplicates: result.crashDuplicatesByRun.get(k.kill) ?? 0,
  }));
  const perRun = herald.runs.map((r) => ({
    run: r.run,
    lasted_ms: (r.exitedAt ?? Date.now()) - r.spawnedAt,
    end: r.end ?? 'running',
    delivered: result.perRun.get(r.run) ?? 0,
  }));
  t.diagnostic(
    `${scenario.backend}: ${n} messages, ${herald.kills} kills, ${herald.runs.length} runs; loaded in ${loadedMs} ms, drained ${drainedMs} ms after the send; ` +
      `sandbox received ${result.deliveries} APNs requests for ${result.distinct} distinct messages: ${result.extra} duplicate deliveries ` +
      `(${result.duplicatedMessages} messages), ${result.extra - result.sameRunDuplicates} explained by a kill, ${result.sameRunDuplicates} with no kill between ` +
      `(bound: ${herald.kills} kills × ${DISPATCHER_HOLD} held = ${herald.kills * DISPATCHER_HOLD}); counts ${JSON.stringify(state.counts)}`,
  );
  t.diagnostic(`${scenario.backend}: per kill ${JSON.stringify(perKill)}`);
  t.diagnostic(`${scenario.backend}: per run ${JSON.stringify(perRun)}`);
  t.diagnostic(`${scenario.backend}: Herald logged ${JSON.stringify(Object.fromEntries(herald.logged))}`);
  const shown = result.duplicateLines.slice(0, 50);
  for (const line of shown) t.diagnostic(`${scenario.backend}: duplicate ${line}`);
  if (result.duplicateLines.length > shown.length) t.diagnostic(`${scenario.backend}: … ${result.duplicateLines.length - shown.length} more duplicated messages`);

  assert.deepEqual(herald.unexpectedExits, [], 'Herald never exited unless killed');
  assert.ok(sandbox.running, `the sandbox kept running:\n${sandbox.output}`);
  assert.equal(herald.kills, scenario.kills);
  assert.deepEqual(result.problems, [], `I4 violated:\n${result.problems.join('\n')}`);
  assert.ok(result.extra <= herald.kills * DISPATCHER_HOLD, `${result.extra} duplicates, more than ${herald.kills} kills × ${DISPATCHER_HOLD}`);

  const code = await herald.stop();
  assert.equal(code, 0, `a clean stop after the crashes exits 0:\n${herald.output.slice(-4000)}`);
}

describe('delivery crash test: SIGKILL of herald start during a large send (I4)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  async function setUp(databaseUrl?: string): Promise<{ herald: DeliveryHerald; sandbox: SandboxServer }> {
    const tmp = tempDir('herald-delivery-crash-');
    cleanups.push(async () => tmp.remove());
    const sandbox = await SandboxServer.start(`${tmp.dir}/sandbox`, 1_000_000);
    cleanups.push(() => sandbox.kill());
    const herald = new DeliveryHerald({
      dataDir: `${tmp.dir}/herald`,
      port: await freePort(),
      sandboxUrl: sandbox.url,
      databaseUrl,
      env: { HERALD_DELIVERY_LEASE_MS: String(LEASE_MS) },
    });
    cleanups.push(() => herald.kill());
    return { herald, sandbox };
  }

  it('I4: on SQLite, 10,000 pushes across 4 SIGKILLs: each delivered, duplicates only from the kills, counted', { timeout: 480_000 }, async (t) => {
    const { herald, sandbox } = await setUp();
    await runScenario(t, { backend: 'sqlite', messages: 10_000, kills: 4, loaders: 24, drainMs: 240_000 }, herald, sandbox);
  });

  it(
    'I4: on PostgreSQL, 2,000 pushes across 3 SIGKILLs: each delivered, duplicates only from the kills, counted',
    { skip: skipWithoutPg, timeout: 360_000 },
    async (t) => {
      const name = randomDatabaseName('herald_dcrash');
      cleanups.push(() => dropDatabases(name));
      const u = new URL(PG_URL!);
      u.pathname = `/${name}`;
      const { herald, sandbox } = await setUp(u.toString());
      await runScenario(t, { backend: 'postgres', messages: 2_000, kills: 3, loaders: 16, drainMs: 240_000 }, herald, sandbox);
    },
  );
});
