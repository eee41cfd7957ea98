import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dropDatabases, PG_URL, randomDatabaseName, skipWithoutPg } from './support/services.ts';
import { freePort, HeraldProcess } from './support/crash-herald.ts';
import { errorCode } from './support/net.ts';
import { tempDir } from './support/temp.ts';

/*
 * I1 — acknowledged means durable, and takes effect exactly once.
 *
 * The real `herald start` runs as a child process. Several client loops stream
 * POST /v1/profiles/update requests at it without pause while the test SIGKILLs the process at
 * random moments and restarts it, over and over. Every request is recorded with its outcome:
 *   - acked:   202 received. All its events must be applied, each exactly once.
 *   - refused: the TCP connection was refused, so Herald never saw it. None of its events may exist.
 *   - unknown: anything else (reset mid-request, 503, timeout). All or none of its events may exist,
 *              never some (a request is appended in one transaction).
 * After a last clean start and once the store has applied the whole log, everything is checked
 * from the outside, through the HTTP API only.
 *
 * Events come in two kinds: events with a client id (`r<request>-e<k>`, deduplicated by Herald),
 * and one event per item without an id, which Herald cannot deduplicate, so a log record applied
 * twice shows up as a duplicate instead of being hidden by the dedupe. event_counts must match the
 * listed events, and every item sets the attribute last_req, whose final value checks that each
 * profile's records were applied in log order across the crashes.
 *
 * Four kills in five come 100–700 ms after /v1/ready (the applier is running and applying);
 * one in five comes 0–300 ms after /v1/health (the applier is starting or catching up).
 */

const EVENT_NAMES = ['viewed', 'clicked', 'purchased'];
const TICK = 'tick';

type Outcome = 'acked' | 'refused' | 'unknown';

interface SentEvent {
  customId: string;
  name: string;
  /** The client id, or null for the per-item event without one. */
  id: string | null;
  item: number;
}

interface SentRequest {
  n: number;
  events: SentEvent[];
  outcome: Outcome;
  detail: string;
  ingestId?: string;
  /** Client-side order: when it was sent, and when its 202 arrived (a counter, not a clock). */
  sentAt: number;
  ackedAt?: number;
}

interface Scenario {
  backend: 'sqlite' | 'postgres';
  /** SIGKILLs, each at a random moment after a restart (see runScenario). */
  kills: number;
  clients: number;
  profiles: number;
  maxItems: number;
  minAckedEvents: number;
}

const rand = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** Streams requests until `stop` is set; records every request and its outcome. */
class Client {
  readonly requests: SentRequest[] = [];
  readonly statuses = new Map<string, number>();
  stop = false;
  #next = 0;
  #clock = 0;
  readonly #url: string;
  readonly #key: string;
  readonly #s: Scenario;

  constructor(url: string, key: string, scenario: Scenario) {
    this.#url = url;
    this.#key = key;
    this.#s = scenario;
  }

  #count(what: string): void {
    this.statuses.set(what, (this.statuses.get(what) ?? 0) + 1);
  }

  #build(): { request: SentRequest; body: unknown[] } {
    const n = ++this.#next;
    const events: SentEvent[] = [];
    const body: unknown[] = [];
    let k = 0;
    const items = rand(1, this.#s.maxItems);
    for (let item = 0; item < items; item++) {
      const customId = `crash-u${rand(1, this.#s.profiles)}`;
      const itemEvents: unknown[] = [];
      for (let e = rand(1, 3); e > 0; e--) {
        const id = `r${n}-e${k++}`;
        const name = EVENT_NAMES[rand(0, EVENT_NAMES.length - 1)]!;
        events.push({ customId, name, id, item });
        itemEvents.push({ name, id, attributes: { req: n, item } });
      }
      events.push({ customId, name: TICK, id: null, item });
      itemEvents.push({ name: TICK, attributes: { req: n, item } });
      body.push({ identifiers: { custom_id: customId }, attributes: { last_req: n }, events: itemEvents });
    }
    return { request: { n, events, outcome: 'unknown', detail: '', sentAt: 0 }, body };
  }

  async #send(): Promise<void> {
    const { request, body } = this.#build();
    this.requests.push(request);
    request.sentAt = ++this.#clock;
    let res: Response;
    try {
      res = await fetch(`${this.#url}/v1/profiles/update`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.#key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
    } catch (error) {
      const code = errorCode(error);
      request.detail = code;
      if (code === 'ECONNREFUSED') request.outcome = 'refused';
      this.#count(code);
      await sleep(rand(50, 150)); // the server is down: do not spin
      return;
    }
    this.#count(String(res.status));
    request.detail = String(res.status);
    if (res.status === 202) {
      request.outcome = 'acked';
      request.ackedAt = ++this.#clock;
    }
    try {
      const answer = (await res.json()) as { accepted?: number; ingest_id?: string };
      if (res.status === 202) {
        request.ingestId = answer.ingest_id;
        request.detail = `202 ${JSON.stringify(answer)}`;
      }
    } catch (error) {
      request.detail += ` (body: ${errorCode(error)})`;
    }
    if (res.status !== 202) await sleep(rand(5, 25));
  }

  async run(): Promise<void> {
    while (!this.stop) await this.#send();
  }
}

async function api(url: string, key: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    ...init,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    signal: AbortSignal.timeout(30_000),
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

/** After the last start: waits until the store has applied everything in the log. */
async function waitApplied(herald: HeraldProcess, key: string): Promise<void> {
  // A write after every kill: once it is applied, so is everything before it in the log.
  let ingestId: string | undefined;
  for (let attempt = 0; attempt < 60 && !ingestId; attempt++) {
    const w = await api(herald.url, key, '/v1/profiles/update', {
      method: 'POST',
      body: JSON.stringify([{ identifiers: { custom_id: 'crash-sentinel' }, attributes: { done: true } }]),
    });
    if (w.status === 202) ingestId = w.body.ingest_id;
    else await sleep(500);
  }
  assert.ok(ingestId, 'the restarted Herald accepted a write');
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await api(herald.url, key, `/v1/profiles/crash-sentinel?wait_for=${ingestId}`);
    const ready = await api(herald.url, key, '/v1/ready');
    const cell = ready.body?.cells?.[0];
    if (r.status === 200 && r.body.consistency?.applied === true && ready.status === 200 && cell?.lag === 0) return;
    assert.ok(
      Date.now() < deadline,
      `the store did not catch up with the log: ${JSON.stringify(r.body)} ${JSON.stringify(ready.body)}\n${herald.output.slice(-4000)}`,
    );
    await sleep(200);
  }
}

interface Stats {
  requests: number;
  acked: number;
  refused: number;
  unknown: number;
  /** Unacknowledged requests that were applied in full (the crash hit after the commit, before the answer). */
  unknownApplied: number;
  ackedEvents: number;
  listedEvents: number;
}

interface ListedEvent {
  name: string;
  id: string | null;
  attributes: { req?: number; item?: number } | null;
}

/** Every event of a profile through GET /v1/profiles/{id}/events, page by page; null when absent. */
async function listEvents(url: string, key: string, customId: string): Promise<ListedEvent[] | null> {
  const out: ListedEvent[] = [];
  let cursor: string | null = null;
  for (;;) {
    const path: string = `/v1/profiles/${customId}/events?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api(url, key, path);
    if (page.status === 404 && cursor === null) return null;
    assert.equal(page.status, 200, `GET ${path}: ${JSON.stringify(page.body)}`);
    out.push(...(page.body.events as ListedEvent[]));
    cursor = page.body.next_cursor as string | null;
    if (cursor === null) return out;
  }
}

const eventKey = (customId: string, name: string, id: string | null, req: unknown, item: unknown): string =>
  id === null ? `${customId}|${name}|req=${String(req)}|item=${String(item)}` : `${customId}|${name}|${id}`;

/** Checks I1 from the outside; returns the problems found (empty when all holds). */
async function verify(url: string, key: string, scenario: Scenario, requests: SentRequest[]): Promise<{ problems: string[]; stats: Stats }> {
  const problems: string[] = [];
  const report = (p: string): void => {
    if (problems.length < 40) problems.push(p);
    else if (problems.length === 40) problems.push('… (more problems not shown)');
  };

  // What was sent: event key → its request.
  const sent = new Map<string, SentRequest>();
  for (const r of requests) for (const e of r.events) sent.set(eventKey(e.customId, e.name, e.id, r.n, e.item), r);

  // What Herald has: event key → how many times, and per request how many of its events.
  const seen = new Map<string, number>();
  const presentPerRequest = new Map<number, number>();
  const lastReq = new Map<string, unknown>();
  let listed = 0;
  for (let p = 1; p <= scenario.profiles; p++) {
    const customId = `crash-u${p}`;
    const events = await listEvents(url, key, customId);
    if (events === null) continue;
    const byName = new Map<string, number>();
    for (const e of events) {
      listed++;
      byName.set(e.name, (byName.get(e.name) ?? 0) + 1);
      const k = eventKey(customId, e.name, e.id, e.attributes?.req, e.attributes?.item);
      const times = (seen.get(k) ?? 0) + 1;
      seen.set(k, times);
      if (times === 2) report(`duplicate event ${k} (applied more than once)`);
      const request = sent.get(k);
      if (!request) {
        report(`event ${k} ${JSON.stringify(e)} was never sent (or landed on the wrong profile)`);
        continue;
      }
      if (e.attributes?.req !== request.n) report(`event ${k} carries attributes ${JSON.stringify(e.attributes)}, sent with req ${request.n}`);
      if (times === 1) presentPerRequest.set(request.n, (presentPerRequest.get(request.n) ?? 0) + 1);
    }
    // event_counts must agree with the events themselves.
    const profile = await api(url, key, `/v1/profiles/${customId}?events_limit=0`);
    assert.equal(profile.status, 200, `GET /v1/profiles/${customId}: ${JSON.stringify(profile.body)}`);
    const counts = profile.body.event_counts as Record<string, number>;
    lastReq.set(customId, profile.body.attributes?.last_req);
    for (const name of new Set([...Object.keys(counts), ...byName.keys()])) {
      if ((counts[name] ?? 0) !== (byName.get(name) ?? 0)) {
        report(`${customId}: event_counts.${name} = ${counts[name] ?? 0} but ${byName.get(name) ?? 0} events are listed`);
      }
    }
  }

  const stats: Stats = { requests: requests.length, acked: 0, refused: 0, unknown: 0, unknownApplied: 0, ackedEvents: 0, listedEvents: listed };
  const ingestIds = new Map<string, number>();
  for (const r of requests) {
    stats[r.outcome]++;
    const present = presentPerRequest.get(r.n) ?? 0;
    const total = r.events.length;
    if (r.outcome === 'acked') {
      stats.ackedEvents += total;
      if (present !== total) report(`request ${r.n} was acknowledged (${r.detail}) but only ${present} of its ${total} events were applied`);
      if (r.ingestId) {
        const other = ingestIds.get(r.ingestId);
        if (other !== undefined) report(`requests ${other} and ${r.n} were both acknowledged with ${r.ingestId}`);
        ingestIds.set(r.ingestId, r.n);
      }
    } else if (r.outcome === 'refused') {
      if (present !== 0) report(`request ${r.n} was refused at connect but ${present} of its ${total} events exist`);
    } else {
      if (present === total) stats.unknownApplied++;
      else if (present !== 0) report(`request ${r.n} (${r.detail}) is half-applied: ${present} of its ${total} events exist`);
    }
  }

  // Per-profile order: every item also sets the profile attribute last_req to its request number.
  // The value that stays must come from an applied request, and not from one that was already
  // acknowledged before another applied request on that profile was even sent (that one is later
  // in the log, so its value must win).
  const byN = new Map(requests.map((r) => [r.n, r]));
  const applied = (r: SentRequest): boolean => (presentPerRequest.get(r.n) ?? 0) === r.events.length;
  for (const [customId, value] of lastReq) {
    const winner = typeof value === 'number' ? byN.get(value) : undefined;
    if (!winner || !applied(winner) || !winner.events.some((e) => e.customId === customId)) {
      report(`${customId}: last_req = ${JSON.stringify(value)}, which no applied request of this profile set`);
      continue;
    }
    const later = requests.find(
      (r) => r !== winner && winner.ackedAt !== undefined && r.sentAt > winner.ackedAt && applied(r) && r.events.some((e) => e.customId === customId),
    );
    if (later) report(`${customId}: last_req = ${winner.n}, but request ${later.n} was sent after ${winner.n} was acknowledged and was applied: applied out of order`);
  }
  return { problems, stats };
}

async function runScenario(t: TestContext, scenario: Scenario, herald: HeraldProcess): Promise<void> {
  await herald.start();
  // Its output may arrive after its first HTTP answer: give the pipe a moment.
  for (let i = 0; i < 200 && !herald.secretKey; i++) await sleep(50);
  assert.ok(herald.secretKey, `the first start printed a secret key:\n${herald.output}`);
  const key = herald.secretKey;

  const client = new Client(herald.url, key, scenario);
  const loops = Array.from({ length: scenario.clients }, () => client.run());
  try {
    for (let kill = 0; kill < scenario.kills; kill++) {
      if (kill > 0) await herald.start();
      if (Math.random() < 0.2) {
        // While it recovers: the applier is starting or catching up with the previous run's log.
        await sleep(rand(0, 300));
      } else {
        // While it serves writes and applies them: the applier is running.
        await herald.waitReady();
        await sleep(rand(100, 700));
      }
      await herald.kill();
    }
  } finally {
    client.stop = true;
    await Promise.all(loops);
  }

  await herald.start();
  await waitApplied(herald, key);
  const { problems, stats } = await verify(herald.url, key, scenario, client.requests);
  const outcomes = Object.fromEntries([...client.statuses].sort());
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  t.diagnostic(
    `${scenario.backend}: ${herald.kills} kills, ${herald.runs} starts (median ${median(herald.startMs)} ms to answer), ` +
      `${JSON.stringify(stats)}, answers ${JSON.stringify(outcomes)}`,
  );

  assert.deepEqual(herald.unexpectedExits, [], 'Herald never exited unless killed');
  assert.deepEqual(problems, [], `I1 violated:\n${problems.join('\n')}`);
  assert.equal(herald.kills, scenario.kills);
  assert.ok(herald.kills >= 20, `at least 20 kills (${herald.kills})`);
  assert.ok(stats.ackedEvents >= scenario.minAckedEvents, `enough acknowledged events to mean something: ${stats.ackedEvents} < ${scenario.minAckedEvents}`);
  assert.ok(stats.unknown > 0, 'some requests were in flight when the process died');
  const unexpected = [...client.statuses.keys()].filter((s) => /^\d+$/.test(s) && s !== '202' && s !== '503');
  assert.deepEqual(unexpected, [], `only 202 and 503 answers (${JSON.stringify(outcomes)})`);

  const code = await herald.stop();
  assert.equal(code, 0, `a clean stop after the crashes exits 0:\n${herald.output.slice(-4000)}`);
}

// The two backends run side by side: each scenario mostly waits for its process to start.
describe('crash test: SIGKILL of herald start while ingesting (I1)', { concurrency: true }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('I1: on SQLite, every acknowledged event is applied exactly once across 20 SIGKILLs; nothing is half-applied', { timeout: 360_000 }, async (t) => {
    const tmp = tempDir('herald-crash-');
    const herald = new HeraldProcess({ dataDir: tmp.dir, port: await freePort() });
    cleanups.push(async () => {
      await herald.kill();
      tmp.remove();
    });
    await runScenario(t, { backend: 'sqlite', kills: 20, clients: 6, profiles: 50, maxItems: 8, minAckedEvents: 5_000 }, herald);
  });

  it(
    'I1: on PostgreSQL, every acknowledged event is applied exactly once across 20 SIGKILLs; nothing is half-applied',
    { skip: skipWithoutPg, timeout: 360_000 },
    async (t) => {
      const tmp = tempDir('herald-crash-');
      const name = randomDatabaseName('herald_crash');
      const u = new URL(PG_URL!);
      u.pathname = `/${name}`;
      const herald = new HeraldProcess({ dataDir: tmp.dir, port: await freePort(), databaseUrl: u.toString() });
      cleanups.push(async () => {
        await herald.kill();
        tmp.remove();
        await dropDatabases(name);
      });
      await runScenario(t, { backend: 'postgres', kills: 20, clients: 4, profiles: 50, maxItems: 6, minAckedEvents: 2_000 }, herald);
    },
  );
});
