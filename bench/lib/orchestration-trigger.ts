/**
 * Part (b) of `npm run bench:orchestration`: a trigger journey (entry event `bench_trigger`,
 * re-entry always, one push step whose body is the event's `seq`) under an open-loop load of
 * triggering events alongside other ingest (profile updates without triggers). Each event's
 * latency is its arrival at the APNs stand-in (the sandbox's receivedAt, read back through its
 * control API) minus the moment this process read Herald's 202 for it (acknowledged, durable).
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { requestJson } from './delivery-http.ts';
import type { SandboxChild } from './delivery-sandbox-child.ts';
import { round } from './herald-child.ts';
import { CpuMeter } from './orchestration-cpu.ts';
import type { OrchestrationHerald } from './orchestration-herald.ts';
import { customIdOf } from './orchestration-seed.ts';

type Row = Record<string, unknown>;

export interface TriggerOptions {
  profiles: number;
  ratePerS: number;
  seconds: number;
  /** Triggering events per request. */
  batch: number;
  otherRatePerS: number;
  /** Profile updates per request of the other ingest. */
  otherBatch: number;
  drainS: number;
  /** Load at the full rates before the measured seconds, not measured (a cold start's transient). */
  warmUpS: number;
  /** Herald's cell store file, read (read-only) after the load for the per-stage split. */
  storeFile: string;
  progress: (message: string) => void;
}

export const JOURNEY = {
  type: 'journey',
  name: 'bench',
  entry: { event: 'bench_trigger' },
  re_entry: { policy: 'always' },
  steps: [{ id: 's', type: 'send', channel: 'push', content: { title: 't', body: '{{ data.seq }}' } }],
};

const MAX_IN_FLIGHT = 512;

function percentiles(values: ArrayLike<number>): { p50: number | null; p90: number | null; p99: number | null; max: number | null; n: number } {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number): number | null => (sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!, 1));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1), n: sorted.length };
}

/** The figures as null, with why: the bench completes when the journey API is not there yet. */
function skipped(note: string, extra: Row = {}): Row {
  return { benchmark: 'trigger', trigger_p50_ms: null, trigger_p99_ms: null, note, ...extra };
}

/**
 * Reads what the APNs stand-in received since the last look (newest first, `limit` at most) and
 * records the arrival of every journey push by its `seq`.
 */
class ArrivalWatcher {
  #afterId = 0;
  gaps = 0;
  others = 0;
  constructor(
    private readonly sandbox: SandboxChild,
    private readonly arrivedAt: Float64Array,
    private readonly seqOffset: number,
  ) {}

  async start(): Promise<void> {
    const page = (await (await fetch(`${this.sandbox.controlUrl}/messages?kind=apns&limit=1`)).json()) as { messages: { id: number }[] };
    this.#afterId = page.messages[0]?.id ?? 0;
  }

  async poll(): Promise<number> {
    const limit = 10_000;
    const page = (await (await fetch(`${this.sandbox.controlUrl}/messages?kind=apns&limit=${limit}&after_id=${this.#afterId}`)).json()) as {
      messages: { id: number; receivedAt: number; body: { aps?: { alert?: { title?: string; body?: string } } } }[];
    };
    if (page.messages.length === limit) this.gaps++;
    let seen = 0;
    for (const m of page.messages) {
      this.#afterId = Math.max(this.#afterId, m.id);
      const alert = m.body.aps?.alert;
      const seq = alert?.title === JOURNEY.steps[0]!.content.title ? Number(alert.body) - this.seqOffset : NaN;
      if (Number.isInteger(seq) && seq >= 0 && seq < this.arrivedAt.length) {
        if (Number.isNaN(this.arrivedAt[seq]!)) seen++;
        this.arrivedAt[seq] = m.receivedAt;
      } else this.others++;
    }
    return seen;
  }
}

/**
 * Where each event's time went, from the journey's messages in Herald's store: acknowledged →
 * message materialised (created_at: the applier, then the orchestrator's trigger), materialised →
 * sent (sent_at: the outbox queue, the delivery thread and the APNs answer), sent → arrival.
 */
function stages(storeFile: string, journeyId: string, times: EventTimes, seqOffset: number): Row {
  const db = new Database(storeFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT created_at, sent_at, render FROM messages WHERE campaign_id = ?').all(journeyId) as { created_at: number; sent_at: number | null; render: string | null }[];
    const toCreated: number[] = [];
    const toSent: number[] = [];
    const toArrival: number[] = [];
    for (const r of rows) {
      const seq = Number((JSON.parse(r.render ?? '{}') as { data?: { seq?: unknown } }).data?.seq) - seqOffset;
      if (!Number.isInteger(seq) || seq < times.firstMeasured || seq >= times.acked.length || Number.isNaN(times.acked[seq]!)) continue;
      toCreated.push(r.created_at - times.acked[seq]!);
      if (r.sent_at === null) continue;
      toSent.push(r.sent_at - r.created_at);
      if (!Number.isNaN(times.arrived[seq]!)) toArrival.push(times.arrived[seq]! - r.sent_at);
    }
    return { messages: rows.length, ack_to_materialised_ms: percentiles(toCreated), materialised_to_sent_ms: percentiles(toSent), sent_to_arrival_ms: percentiles(toArrival) };
  } finally {
    db.close();
  }
}

/**
 * p50 and p99 of the latency of the events acknowledged in each `bucketS` of the load, warm-up
 * included (seconds from the load's start): a rising line is a backlog, a falling one a warm-up.
 */
function overTime(times: EventTimes, bucketS: number): [number, number | null, number | null][] {
  const { acked, arrived } = times;
  let t0 = Infinity;
  for (let k = times.probes; k < acked.length; k++) if (!Number.isNaN(acked[k]!)) t0 = Math.min(t0, acked[k]!);
  const buckets: number[][] = [];
  for (let k = times.probes; k < acked.length; k++) {
    if (Number.isNaN(acked[k]!) || Number.isNaN(arrived[k]!)) continue;
    (buckets[Math.floor((acked[k]! - t0) / (bucketS * 1000))] ??= []).push(arrived[k]! - acked[k]!);
  }
  return Array.from(buckets, (b, i) => {
    const p = percentiles(b ?? []);
    return [i * bucketS, p.p50, p.p99];
  });
}

interface LoadCounters {
  requests: number;
  statuses: Record<string, number>;
  ackMs: number[];
  behindMs: number;
}

/**
 * Fires `count` requests at `ratePerS` requests per second from `t0`, open loop (a request's start
 * does not wait for earlier answers, up to MAX_IN_FLIGHT), calling `onAnswer` for each answer.
 */
async function openLoop(count: number, ratePerS: number, send: (k: number) => Promise<number>, counters: LoadCounters): Promise<void> {
  const t0 = performance.now();
  let next = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  while (next < count) {
    const due = Math.min(count, Math.floor(((performance.now() - t0) / 1000) * ratePerS) + 1);
    while (next < due && inFlight < MAX_IN_FLIGHT) {
      const k = next++;
      inFlight++;
      const started = performance.now();
      const p: Promise<void> = send(k)
        .then(
          (status) => {
            counters.statuses[status] = (counters.statuses[status] ?? 0) + 1;
            counters.ackMs.push(performance.now() - started);
          },
          (error: unknown) => {
            const key = `error ${String((error as { code?: string }).code ?? error)}`;
            counters.statuses[key] = (counters.statuses[key] ?? 0) + 1;
          },
        )
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
      counters.requests++;
    }
    if (next < due) counters.behindMs = Math.max(counters.behindMs, ((due - next) / ratePerS) * 1000);
    await sleep(2);
  }
  await Promise.all(pending);
}

/** Creates and activates the journey; an answer that says why not, when Herald cannot. */
async function startJourney(herald: OrchestrationHerald): Promise<{ id: string } | { note: string }> {
  const create = await herald.call('POST', '/v1/automations', JOURNEY);
  if (create.status === 404) return { note: `POST /v1/automations answered 404 (${create.body.slice(0, 200)}): journeys are not in this Herald yet; trigger figures are null` };
  if (create.status !== 201) return { note: `POST /v1/automations answered ${create.status}: ${create.body.slice(0, 500)}` };
  const journey = JSON.parse(create.body) as { id: string };
  const activate = await herald.call('POST', `/v1/automations/${journey.id}/activate`);
  if (activate.status < 200 || activate.status >= 300) return { note: `POST /v1/automations/${journey.id}/activate answered ${activate.status}: ${activate.body.slice(0, 500)}` };
  return journey;
}

/**
 * Per event k (seq = SEQ_OFFSET + k): when it was sent, acknowledged (202 read) and received by the
 * stand-in, epoch ms. Probes come first, then the load's warm-up, then the measured events.
 */
class EventTimes {
  readonly sent: Float64Array;
  readonly acked: Float64Array;
  readonly arrived: Float64Array;
  constructor(
    readonly probes: number,
    readonly warmUp: number,
    readonly measured: number,
  ) {
    const n = probes + warmUp + measured;
    [this.sent, this.acked, this.arrived] = [0, 1, 2].map(() => new Float64Array(n).fill(NaN)) as [Float64Array, Float64Array, Float64Array];
  }

  get firstMeasured(): number {
    return this.probes + this.warmUp;
  }

  /** Measured events acknowledged, and of those, arrived. */
  counts(): { acked: number; arrived: number } {
    let acked = 0;
    let arrived = 0;
    for (let k = this.firstMeasured; k < this.acked.length; k++) {
      if (Number.isNaN(this.acked[k]!)) continue;
      acked++;
      if (!Number.isNaN(this.arrived[k]!)) arrived++;
    }
    return { acked, arrived };
  }

  latencies(from: Float64Array): number[] {
    const out: number[] = [];
    for (let k = this.firstMeasured; k < this.acked.length; k++) if (!Number.isNaN(this.acked[k]!) && !Number.isNaN(this.arrived[k]!)) out.push(this.arrived[k]! - from[k]!);
    return out;
  }
}

const SEQ_OFFSET = 1_000_000;
const PROBES = 20;

/** Posts events k … k+n−1 (one per profile, spread over the seeded profiles) and records their times. */
function eventPoster(herald: OrchestrationHerald, agent: http.Agent, times: EventTimes, profiles: number): (first: number, n: number) => Promise<number> {
  const tag = Date.now().toString(36);
  return async (first, n) => {
    const items = [];
    for (let k = first; k < first + n; k++) {
      const profile = ((k * 7919) % profiles) + 1;
      items.push({ identifiers: { custom_id: customIdOf(profile) }, events: [{ name: 'bench_trigger', id: `${tag}-${k}`, attributes: { seq: SEQ_OFFSET + k } }] });
      times.sent[k] = Date.now();
    }
    const answer = await requestJson(agent, `${herald.url}/v1/profiles/update`, 'POST', { authorization: herald.authorization }, JSON.stringify(items));
    if (answer.status === 202) {
      const now = Date.now();
      for (let k = first; k < first + n; k++) times.acked[k] = now;
    }
    return answer.status;
  };
}

/** One event at a time until a push of the journey arrives: the journey is live before the clock starts. */
async function probe(post: (first: number, n: number) => Promise<number>, watcher: ArrivalWatcher, times: EventTimes): Promise<boolean> {
  for (let k = 0; k < times.probes; k++) {
    await post(k, 1);
    for (let i = 0; i < 20; i++) {
      await sleep(100);
      await watcher.poll();
      if (times.arrived.subarray(0, times.probes).some((t) => !Number.isNaN(t))) return true;
    }
  }
  return false;
}

/** The other ingest: profile updates without triggers, `otherBatch` per request. */
function otherPoster(herald: OrchestrationHerald, agent: http.Agent, o: TriggerOptions): (r: number) => Promise<number> {
  const tag = Date.now().toString(36);
  return async (r) => {
    const items = [];
    for (let j = 0; j < o.otherBatch; j++) {
      const n = r * o.otherBatch + j;
      items.push({ identifiers: { custom_id: customIdOf(((n * 104_729 + 12_345) % o.profiles) + 1) }, attributes: { bench_counter: n, bench_tag: tag } });
    }
    return (await requestJson(agent, `${herald.url}/v1/profiles/update`, 'POST', { authorization: herald.authorization }, JSON.stringify(items))).status;
  };
}

export async function triggerPhase(herald: OrchestrationHerald, sandbox: SandboxChild, o: TriggerOptions): Promise<Row> {
  const journey = await startJourney(herald);
  if ('note' in journey) return skipped(journey.note);
  const times = new EventTimes(PROBES, Math.round(o.ratePerS * o.warmUpS), Math.round(o.ratePerS * o.seconds));
  const watcher = new ArrivalWatcher(sandbox, times.arrived, SEQ_OFFSET);
  await watcher.start();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const otherAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  try {
    const post = eventPoster(herald, agent, times, o.profiles);
    const probeStarted = performance.now();
    if (!(await probe(post, watcher, times)))
      return skipped(`no journey push arrived within ${round((performance.now() - probeStarted) / 1000)} s of ${PROBES} probe events (journey ${journey.id}); trigger figures are null`);
    o.progress(`journey ${journey.id} live after ${round((performance.now() - probeStarted) / 1000, 1)} s; ${o.warmUpS} s warm-up then ${o.seconds} s measured of ${o.ratePerS} triggers/s with ${o.otherRatePerS} other updates/s`);
    const load = await runLoad(herald, sandbox, o, times, watcher, post, otherPoster(herald, otherAgent, o));
    return report(journey.id, o, times, watcher, load);
  } finally {
    agent.destroy();
    otherAgent.destroy();
  }
}

interface LoadResult {
  trigger: LoadCounters;
  other: LoadCounters;
  loadS: number;
  drainS: number;
  cpu: Row;
}

/** Warm-up and measured load in one open loop per stream, then waits for the acknowledged events' pushes. */
async function runLoad(
  herald: OrchestrationHerald,
  sandbox: SandboxChild,
  o: TriggerOptions,
  times: EventTimes,
  watcher: ArrivalWatcher,
  post: (first: number, n: number) => Promise<number>,
  postOther: (r: number) => Promise<number>,
): Promise<LoadResult> {
  const trigger: LoadCounters = { requests: 0, statuses: {}, ackMs: [], behindMs: 0 };
  const other: LoadCounters = { requests: 0, statuses: {}, ackMs: [], behindMs: 0 };
  let watching = true;
  const watch = (async () => {
    while (watching) {
      await watcher.poll();
      await sleep(50);
    }
  })();
  const events = times.warmUp + times.measured;
  const meter = new CpuMeter(sandbox, herald);
  const t0 = performance.now();
  await Promise.all([
    openLoop(Math.ceil(events / o.batch), o.ratePerS / o.batch, (r) => post(times.probes + r * o.batch, Math.min(o.batch, events - r * o.batch)), trigger),
    openLoop(Math.ceil((o.otherRatePerS * (o.warmUpS + o.seconds)) / o.otherBatch), o.otherRatePerS / o.otherBatch, postOther, other),
  ]);
  const loadS = (performance.now() - t0) / 1000;
  const drainStart = performance.now();
  for (let c = times.counts(); c.arrived < c.acked && performance.now() - drainStart < o.drainS * 1000; c = times.counts()) await sleep(100);
  watching = false;
  await watch;
  await watcher.poll();
  return { trigger, other, loadS, drainS: (performance.now() - drainStart) / 1000, cpu: meter.read() };
}

function report(journeyId: string, o: TriggerOptions, times: EventTimes, watcher: ArrivalWatcher, load: LoadResult): Row {
  const l = percentiles(times.latencies(times.acked));
  const c = times.counts();
  return {
    benchmark: 'trigger',
    description:
      `A trigger journey (entry event bench_trigger, re-entry always, one push step) under ${o.ratePerS} triggering events/s (${o.batch} per POST /v1/profiles/update), ` +
      `open loop, alongside ${o.otherRatePerS} profile updates/s without triggers (${o.otherBatch} per request): ${o.warmUpS} s of warm-up, then ${o.seconds} s measured. ` +
      "Latency = the APNs stand-in's receivedAt − the moment this process read Herald's 202 for the event. " +
      'stages: from the journey messages in Herald’s store (created_at = materialised by the orchestrator; sent_at = written after the APNs answer, hence after the arrival).',
    journey_id: journeyId,
    trigger_p50_ms: l.p50,
    trigger_p99_ms: l.p99,
    ack_to_arrival_ms: l,
    send_to_arrival_ms: percentiles(times.latencies(times.sent)),
    events: times.measured,
    events_acked: c.acked,
    events_arrived: c.arrived,
    events_missing: c.acked - c.arrived,
    stages: stages(o.storeFile, journeyId, times, SEQ_OFFSET),
    latency_over_time_s_p50_p99: overTime(times, 5),
    trigger_statuses: load.trigger.statuses,
    trigger_ack_ms: percentiles(load.trigger.ackMs),
    trigger_events_per_s_achieved: Math.round((times.warmUp + times.measured) / load.loadS),
    other_updates: Math.round(o.otherRatePerS * (o.warmUpS + o.seconds)),
    other_statuses: load.other.statuses,
    other_ack_ms: percentiles(load.other.ackMs),
    load_generator_max_behind_ms: Math.round(Math.max(load.trigger.behindMs, load.other.behindMs)),
    load_seconds: round(load.loadS, 2),
    drain_seconds: round(load.drainS, 2),
    stand_in_other_messages: watcher.others,
    stand_in_pages_full: watcher.gaps,
    cpu: load.cpu,
  };
}
