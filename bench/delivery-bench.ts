/**
 * `npm run bench:delivery` — Herald's delivery (issue 3, "Performance"; DESIGN.md §8), measured in
 * one run on one machine against the limit that bounds it and a peer. Prints one JSON object per
 * benchmark, then a summary object (last line).
 *
 *  (a) herald_push: BENCH_PUSHES (200,000) iOS pushes through a real `herald start` child process
 *      (its outbox, dispatcher, APNs provider) to the APNs stand-in of a `herald sandbox serve`
 *      child process: POST /v1/send in chunks of 10,000 custom_ids, measured from the first send
 *      until the stand-in counted them all (GET /counts). p50/p99 queue-to-delivered latency =
 *      each message's sent_at − created_at (created_at is when POST /v1/send was accepted),
 *      read from Herald's store after the phase.
 *  (b) raw_apns: the raw limit — a minimal node:http2 client in this process sending the same
 *      requests (path, headers, payload, a valid ES256 provider token) to the same stand-in
 *      process, with a fixed window of streams in flight; the best window counts.
 *  (c) peer_node_apn: @parse/node-apn's Provider sending the same notifications to the same
 *      stand-in (over h2c, through the `createConnection` option it passes to http2.connect).
 *  (d) herald_email: BENCH_EMAILS (20,000) emails through Herald to the SMTP stand-in; and
 *      raw_smtp: the same mail from nodemailer's pool (Herald's transport settings) straight to
 *      the stand-in, the bound Herald's email rate could reach.
 *  (e) herald_memory: VmHWM of the Herald process (worker threads included) over the whole run.
 *
 * Each phase also reports where the CPU went: Herald per thread, the stand-in, this process, and
 * other processes on the machine (the 2 cores are shared).
 *
 * Knobs (environment, all optional): BENCH_PUSHES (200000), BENCH_PUSH_RECIPIENTS (= pushes;
 * fewer makes the sends cycle over them), BENCH_EMAILS (20000), BENCH_PUSH_TIMEOUT_S (120),
 * BENCH_EMAIL_TIMEOUT_S (45), BENCH_CLIENT_WINDOWS ("100,1000": streams in flight for the raw and
 * peer clients; each window sends BENCH_PUSHES / windows notifications), BENCH_RAW_EMAILS (3000),
 * BENCH_HERALD_NODE_ARGS (extra node flags for Herald, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
 * BENCH_ONLY (comma list of herald,raw,peer,smtp,client,outbox; a partial run has no summary), BENCH_CLIENT_ONLY_PUSHES (pushes / 4), BENCH_OUTBOX_MESSAGES (20000), BENCH_DISPATCHER_MESSAGES (10000),
 * BENCH_WAIT_QUIET_S (wait up to this long for other processes to use < 0.25 cores; 0),
 * BENCH_KEEP_DATA=1 (keep the temp data dirs).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import nodemailer from 'nodemailer';
import { apnsSandboxCredentials } from '../src/sandbox/apns/apns-sandbox-credentials.ts';
import { SANDBOX_SMTP_FROM } from '../src/sandbox/smtp/smtp-sandbox-credentials.ts';
import { alertPayload, nodeApnRun, rawApnsRun, type ApnsKey, type ApnsRunResult } from './lib/delivery-apns-clients.ts';
import { postMany, requestJson } from './lib/delivery-http.ts';
import { apnsClientRun, dispatcherRun, outboxRawRun } from './lib/delivery-outbox.ts';
import { SandboxChild } from './lib/delivery-sandbox-child.ts';
import { HeraldChild, freePort, round, systemBusySeconds, systemStealSeconds, type ThreadCpu } from './lib/herald-child.ts';

const env = process.env;
const num = (name: string, fallback: number): number => (env[name] ? Number(env[name]) : fallback);
const PUSHES = num('BENCH_PUSHES', 200_000);
const PUSH_RECIPIENTS = Math.min(PUSHES, num('BENCH_PUSH_RECIPIENTS', PUSHES));
const EMAILS = num('BENCH_EMAILS', 20_000);
const PUSH_TIMEOUT_S = num('BENCH_PUSH_TIMEOUT_S', 120);
const EMAIL_TIMEOUT_S = num('BENCH_EMAIL_TIMEOUT_S', 45);
const RAW_EMAILS = num('BENCH_RAW_EMAILS', 3_000);
const CLIENT_WINDOWS = (env.BENCH_CLIENT_WINDOWS ?? '100,1000').split(',').map(Number);
const CLIENT_ONLY_PUSHES = num('BENCH_CLIENT_ONLY_PUSHES', Math.ceil(PUSHES / 4));
const OUTBOX_MESSAGES = num('BENCH_OUTBOX_MESSAGES', 20_000);
const OUTBOX_SINGLES = Math.ceil(OUTBOX_MESSAGES / 10);
const DISPATCHER_MESSAGES = num('BENCH_DISPATCHER_MESSAGES', 10_000);
const SEND_CHUNK = Math.min(10_000, PUSH_RECIPIENTS);
const SETUP_CONCURRENCY = 32;
const POLL_MS = 200;
const KEEP_DATA = env.BENCH_KEEP_DATA === '1';
const TITLE = 'Hello from Herald';
const BODY = 'Your order has shipped and will arrive tomorrow.';
const EMAIL_SUBJECT = 'Your receipt';
const EMAIL_HTML = '<h1>Thank you</h1><p>Your order <b>#1234</b> has shipped. <a href="https://example.com/o/1234">Track it</a>.</p>';

const TARGETS = {
  push_per_s: { op: '>=', value: 10_000 },
  push_to_raw_ratio: { op: '>=', value: 0.6 },
  push_to_peer_ratio: { op: '>', value: 1 },
  email_per_s: { op: '>=', value: 2_000 },
  peak_rss_mb: { op: '<=', value: 500 },
} as const;

type Row = Record<string, unknown>;

function emit(result: Row): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function progress(message: string): void {
  process.stderr.write(`[bench:delivery ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function percentiles(values: number[]): { p50: number; p90: number; p99: number; max: number } {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `herald-bench-delivery-${label}-`));
}

/** The commit the benchmark ran against, with "+dirty" when src/ has uncommitted changes. */
function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin', 'package.json'], { encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return null;
  }
}

function machine(): Row {
  return {
    nproc: os.availableParallelism(),
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    total_mem_mb: Math.round(os.totalmem() / 1048576),
  };
}

const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Thread names from /proc (Node names its worker threads' OS threads after nothing useful, but libuv/V8 helpers are recognisable). */
function threadName(pid: number, tid: number): string {
  if (tid === pid) return 'main';
  try {
    return `${fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()} ${tid}`;
  } catch {
    return `tid ${tid}`;
  }
}

/**
 * CPU used during a phase: Herald per thread, the sandbox, this process, everything else on the
 * machine (other engineers' tests share the 2 cores), and steal.
 */
class CpuMeter {
  readonly #t0 = performance.now();
  readonly #system0 = systemBusySeconds();
  readonly #steal0 = systemStealSeconds();
  readonly #self0 = selfCpuSeconds();
  readonly #sandbox0: number;
  readonly #herald0: number;
  readonly #threads0: ThreadCpu[];

  constructor(
    private readonly sandbox: SandboxChild,
    private readonly herald: HeraldChild | undefined,
  ) {
    this.#sandbox0 = sandbox.cpuSeconds();
    this.#herald0 = herald?.cpuSeconds() ?? 0;
    this.#threads0 = herald?.threadCpu() ?? [];
  }

  /** CPU figures for the phase so far; per-message µs when `messages` is given. */
  read(messages: number): Row {
    const seconds = (performance.now() - this.#t0) / 1000;
    const system = systemBusySeconds() - this.#system0;
    const self = selfCpuSeconds() - this.#self0;
    const sandbox = this.sandbox.cpuSeconds() - this.#sandbox0;
    const herald = this.herald ? this.herald.cpuSeconds() - this.#herald0 : 0;
    const us = (s: number): number => (messages > 0 ? round((s * 1e6) / messages, 1) : NaN);
    const out: Row = {
      seconds: round(seconds, 2),
      sandbox_cpu_s: round(sandbox, 2),
      sandbox_us_per_message: us(sandbox),
      bench_process_cpu_s: round(self, 2),
      bench_process_us_per_message: us(self),
      other_processes_cpu_cores: round(Math.max(0, system - sandbox - herald - self) / seconds, 2),
      machine_busy_cores: round(system / seconds, 2),
      steal_cores: round((systemStealSeconds() - this.#steal0) / seconds, 2),
    };
    if (this.herald) {
      const start = new Map(this.#threads0.map((t) => [t.tid, t.cpuS]));
      const pid = this.herald.pid;
      out.herald_cpu_s = round(herald, 2);
      out.herald_us_per_message = us(herald);
      out.herald_threads = this.herald
        .threadCpu()
        .map((t) => ({ thread: threadName(pid, t.tid), cpu_s: round(t.cpuS - (start.get(t.tid) ?? 0), 2), cores: round((t.cpuS - (start.get(t.tid) ?? 0)) / seconds, 2) }))
        .filter((t) => t.cpu_s >= 0.05)
        .sort((a, b) => b.cpu_s - a.cpu_s);
    }
    return out;
  }
}

/** CPU cores other processes use right now (sampled over 2 s). */
async function backgroundCores(): Promise<number> {
  const s0 = systemBusySeconds();
  const self0 = selfCpuSeconds();
  await sleep(2000);
  return round((systemBusySeconds() - s0 - (selfCpuSeconds() - self0)) / 2, 2);
}

async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + num('BENCH_WAIT_QUIET_S', 0) * 1000;
  let cores = await backgroundCores();
  while (cores >= 0.25 && Date.now() < deadline) {
    progress(`waiting for a quiet machine: other processes use ${cores} cores`);
    await sleep(10_000);
    cores = await backgroundCores();
  }
  return cores;
}

const pushCustomId = (i: number): string => `p${i}`;
const emailCustomId = (i: number): string => `e${i}`;

interface HeraldApi {
  url: string;
  agent: http.Agent;
  headers: Record<string, string>;
}

async function waitApplied(herald: HeraldChild, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if ((await herald.ready()).lag === 0) return true;
    await sleep(100);
  }
  return false;
}

/** Profiles with one iOS installation each: POST /v1/installations with custom_id creates the profile. */
async function setupPushRecipients(herald: HeraldChild, api: HeraldApi, tokens: string[]): Promise<Row> {
  const t0 = performance.now();
  const installs = await postMany({
    url: `${api.url}/v1/installations`,
    headers: api.headers,
    count: PUSH_RECIPIENTS,
    concurrency: SETUP_CONCURRENCY,
    bodyOf: (i) => JSON.stringify({ install_id: `i${i}`, custom_id: pushCustomId(i), platform: 'ios', push_token: tokens[i], push_enabled: true }),
  });
  progress(`${PUSH_RECIPIENTS} installations accepted in ${round(installs.elapsedMs / 1000)} s`);
  const applied = await waitApplied(herald, 120_000);
  const result = {
    benchmark: 'setup_push',
    description: `Push recipients created through the API before the timed phase (not a target): ${PUSH_RECIPIENTS} × POST /v1/installations {install_id, custom_id, platform: ios, push_token: 64 hex, push_enabled: true}, ${SETUP_CONCURRENCY} in flight`,
    profiles_with_installation: PUSH_RECIPIENTS,
    installations_per_s: Math.round((PUSH_RECIPIENTS / installs.elapsedMs) * 1000),
    back_pressure_retries: installs.retries,
    applied,
    seconds: round((performance.now() - t0) / 1000, 1),
  };
  emit(result);
  return result;
}

/** Profiles with an $email_address, 1,000 per POST /v1/profiles/update. */
async function setupEmailRecipients(herald: HeraldChild, api: HeraldApi): Promise<Row> {
  const t0 = performance.now();
  const per = 1000;
  const profiles = await postMany({
    url: `${api.url}/v1/profiles/update`,
    headers: api.headers,
    count: Math.ceil(EMAILS / per),
    concurrency: 4,
    bodyOf: (k) => {
      const items = [];
      for (let i = k * per; i < Math.min(EMAILS, (k + 1) * per); i++) {
        items.push({ identifiers: { custom_id: emailCustomId(i) }, attributes: { $email_address: `user${i}@example.com`, first_name: `User ${i}` } });
      }
      return JSON.stringify(items);
    },
  });
  const applied = await waitApplied(herald, 60_000);
  const result = {
    benchmark: 'setup_email',
    description: `${EMAILS} profiles with $email_address through POST /v1/profiles/update (1,000 per request), before the timed phase`,
    email_profiles: EMAILS,
    back_pressure_retries: profiles.retries,
    applied,
    seconds: round((performance.now() - t0) / 1000, 1),
  };
  emit(result);
  return result;
}

/**
 * One message to a probe recipient, repeated until it is delivered: a send made right after a first
 * start can fail with PROVIDER_NOT_CONFIGURED (the delivery thread sees the demo project's sandbox
 * providers at its next control-plane refresh, up to 1 s after `herald start` wired them), and it
 * opens the provider's connection before the clock starts.
 */
async function warmUp(herald: HeraldChild, api: HeraldApi, channel: 'push' | 'email'): Promise<Row> {
  const customId = `probe-${channel}`;
  const body =
    channel === 'push'
      ? JSON.stringify({ install_id: 'probe', custom_id: customId, platform: 'ios', push_token: randomBytes(32).toString('hex'), push_enabled: true })
      : JSON.stringify([{ identifiers: { custom_id: customId }, attributes: { $email_address: 'probe@example.com' } }]);
  await requestJson(api.agent, `${api.url}${channel === 'push' ? '/v1/installations' : '/v1/profiles/update'}`, 'POST', api.headers, body);
  await waitApplied(herald, 10_000);
  const started = performance.now();
  const failures: string[] = [];
  while (performance.now() - started < 30_000) {
    await postSends(api, 1, 1, () => customId, channel);
    for (let i = 0; i < 40; i++) {
      await sleep(50);
      const page = JSON.parse((await requestJson(api.agent, `${api.url}/v1/messages?custom_id=${customId}&limit=1`, 'GET', api.headers)).body) as {
        messages: { state: string; error_code: string | null }[];
      };
      const state = page.messages[0]?.state;
      if (state === 'sent') return { warm_up_s: round((performance.now() - started) / 1000, 2), failed_probes: failures };
      if (state === 'failed') {
        failures.push(page.messages[0]!.error_code ?? 'failed');
        await sleep(500);
        break;
      }
    }
  }
  throw new Error(`a probe ${channel} message was not delivered within 30 s (${failures.join(', ')})`);
}

/** POSTs the sends (chunks of ≤ 10,000 custom_ids) and returns their ids. */
async function postSends(api: HeraldApi, total: number, recipients: number, customId: (i: number) => string, channel: 'push' | 'email'): Promise<string[]> {
  const chunk = Math.min(10_000, recipients);
  const ids: string[] = [];
  for (let first = 0; first < total; first += chunk) {
    const list: string[] = [];
    for (let i = first; i < Math.min(total, first + chunk); i++) list.push(customId(i % recipients));
    const message = channel === 'push' ? { title: TITLE, body: BODY } : { subject: EMAIL_SUBJECT, html: EMAIL_HTML };
    const answer = await requestJson(api.agent, `${api.url}/v1/send`, 'POST', api.headers, JSON.stringify({ recipients: { custom_ids: list }, channel, message }));
    if (answer.status !== 201) throw new Error(`POST /v1/send answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    ids.push((JSON.parse(answer.body) as { send_id: string }).send_id);
  }
  return ids;
}

interface Watched {
  reached: number;
  complete: boolean;
  /** ms from the first POST /v1/send. */
  doneMs: number;
  firstMs: number | null;
  materialisedMs: number | null;
  timeline: [number, number][];
  rssMaxMb: number;
}

/** Polls the stand-in's count of `kind` until it grew by `target` (or the timeout), and Herald's applier lag. */
async function watchDelivery(sandbox: SandboxChild, herald: HeraldChild, kind: string, base: number, target: number, t0: number, timeoutS: number, sendsPosted: Promise<unknown>): Promise<Watched> {
  let posted = false;
  void sendsPosted.then(() => {
    posted = true;
  });
  const timeline: [number, number][] = [];
  let firstMs: number | null = null;
  let materialisedMs: number | null = null;
  let reached = 0;
  let rssMaxMb = 0;
  let lastLogged = 0;
  for (;;) {
    const now = performance.now() - t0;
    reached = (await sandbox.count(kind)) - base;
    rssMaxMb = Math.max(rssMaxMb, herald.statusMb('VmRSS'));
    if (reached > 0 && firstMs === null) firstMs = now;
    if (materialisedMs === null && posted && (await herald.ready()).lag === 0) materialisedMs = now;
    if (timeline.length === 0 || now - timeline.at(-1)![0] * 1000 >= 1000 || reached >= target) timeline.push([round(now / 1000, 1), reached]);
    if (now - lastLogged > 10_000) {
      lastLogged = now;
      progress(`${kind}: ${reached} of ${target} after ${round(now / 1000)} s`);
    }
    if (reached >= target) return { reached, complete: true, doneMs: now, firstMs, materialisedMs, timeline, rssMaxMb };
    if (now > timeoutS * 1000) return { reached, complete: false, doneMs: now, firstMs, materialisedMs, timeline, rssMaxMb };
    await sleep(POLL_MS);
  }
}

/** Rate between 10% and 90% of the target on the timeline (the steady part, without ramp-up and tail). */
function steadyRate(timeline: [number, number][], target: number): number | null {
  const lo = timeline.find(([, n]) => n >= target * 0.1);
  const hi = timeline.find(([, n]) => n >= target * 0.9);
  if (!lo || !hi || hi[0] <= lo[0]) return null;
  return Math.round((hi[1] - lo[1]) / (hi[0] - lo[0]));
}

/** Queue-to-delivered latency of every sent message of these sends, from Herald's store (read-only). */
function storeLatencies(dataDir: string, sendIds: string[]): { latency_ms: Row; states: Record<string, number>; attempts_max: number } {
  const db = new Database(path.join(dataDir, 'cells', 'c1', 'store.db'), { readonly: true, fileMustExist: true });
  try {
    const marks = sendIds.map(() => '?').join(',');
    const rows = db.prepare(`SELECT state, created_at, sent_at, attempts FROM messages WHERE send_id IN (${marks})`).all(...sendIds) as {
      state: string;
      created_at: number;
      sent_at: number | null;
      attempts: number;
    }[];
    const states: Record<string, number> = {};
    const latencies: number[] = [];
    // A message not delivered yet has waited at least until now: with those counted, a p99 that
    // includes every message is at least this (only differs from the delivered-only one on a timeout).
    const all: number[] = [];
    const readAt = Date.now();
    let attemptsMax = 0;
    for (const r of rows) {
      states[r.state] = (states[r.state] ?? 0) + 1;
      if (r.sent_at !== null) latencies.push(r.sent_at - r.created_at);
      all.push((r.sent_at ?? readAt) - r.created_at);
      attemptsMax = Math.max(attemptsMax, r.attempts);
    }
    return {
      latency_ms: { ...percentiles(latencies), measured: latencies.length, p99_all_messages_at_least: percentiles(all).p99, messages: rows.length },
      states,
      attempts_max: attemptsMax,
    };
  } finally {
    db.close();
  }
}

async function heraldPushPhase(sandbox: SandboxChild, herald: HeraldChild, api: HeraldApi, dataDir: string): Promise<Row> {
  const base = await sandbox.count('apns');
  const meter = new CpuMeter(sandbox, herald);
  const t0 = performance.now();
  let postedMs = NaN;
  const sends = postSends(api, PUSHES, PUSH_RECIPIENTS, pushCustomId, 'push').then((ids) => {
    postedMs = performance.now() - t0;
    return ids;
  });
  const watched = await watchDelivery(sandbox, herald, 'apns', base, PUSHES, t0, PUSH_TIMEOUT_S, sends);
  const sendIds = await sends;
  const cpu = meter.read(watched.reached);
  // Let the last outcomes settle before reading them.
  await sleep(1000);
  const store = storeLatencies(dataDir, sendIds);
  const result = {
    benchmark: 'herald_push',
    description:
      `${PUSHES} iOS pushes (${PUSH_RECIPIENTS} profiles, one installation each) through Herald's outbox to the sandbox APNs stand-in ` +
      `(another process): POST /v1/send × ${sendIds.length} (≤ ${SEND_CHUNK} custom_ids each) → stand-in count`,
    pushes: PUSHES,
    delivered: watched.reached,
    complete: watched.complete,
    push_per_s: Math.round((watched.reached / watched.doneMs) * 1000),
    steady_push_per_s: steadyRate(watched.timeline, PUSHES),
    seconds: round(watched.doneMs / 1000, 2),
    sends_posted_s: round(postedMs / 1000, 2),
    first_delivery_s: watched.firstMs === null ? null : round(watched.firstMs / 1000, 2),
    all_materialised_s: watched.materialisedMs === null ? null : round(watched.materialisedMs / 1000, 2),
    queue_to_delivered_ms: store.latency_ms,
    latency_definition: 'sent_at − created_at per message (created_at = when POST /v1/send was accepted; sent_at = when APNs answered 200)',
    message_states: store.states,
    attempts_max: store.attempts_max,
    herald_rss_max_mb: round(watched.rssMaxMb),
    cpu,
    timeline_s_count: watched.timeline,
  };
  emit(result);
  return result;
}

async function heraldEmailPhase(sandbox: SandboxChild, herald: HeraldChild, api: HeraldApi, dataDir: string): Promise<Row> {
  const base = await sandbox.count('smtp');
  const meter = new CpuMeter(sandbox, herald);
  const t0 = performance.now();
  const sends = postSends(api, EMAILS, EMAILS, emailCustomId, 'email');
  const watched = await watchDelivery(sandbox, herald, 'smtp', base, EMAILS, t0, EMAIL_TIMEOUT_S, sends);
  const sendIds = await sends;
  const cpu = meter.read(watched.reached);
  const store = storeLatencies(dataDir, sendIds);
  const result = {
    benchmark: 'herald_email',
    description: `${EMAILS} transactional emails through Herald to the sandbox SMTP stand-in (another process), timed out after ${EMAIL_TIMEOUT_S} s`,
    emails: EMAILS,
    delivered: watched.reached,
    complete: watched.complete,
    email_per_s: Math.round((watched.reached / watched.doneMs) * 1000),
    steady_email_per_s: steadyRate(watched.timeline, Math.min(EMAILS, Math.max(watched.reached, 1))),
    seconds: round(watched.doneMs / 1000, 2),
    first_delivery_s: watched.firstMs === null ? null : round(watched.firstMs / 1000, 2),
    queue_to_delivered_ms: store.latency_ms,
    message_states_at_end: store.states,
    cpu,
    timeline_s_count: watched.timeline.filter((_, i, all) => i % 5 === 0 || i === all.length - 1),
  };
  emit(result);
  return result;
}

async function clientPhase(
  name: 'raw_apns' | 'peer_node_apn',
  sandbox: SandboxChild,
  key: ApnsKey,
  tokens: string[],
): Promise<Row & { best: ApnsRunResult }> {
  const runs: Row[] = [];
  let best: ApnsRunResult | undefined;
  const perWindow = Math.ceil(PUSHES / CLIENT_WINDOWS.length);
  for (const window of CLIENT_WINDOWS) {
    const base = await sandbox.count('apns');
    const meter = new CpuMeter(sandbox, undefined);
    const options = { origin: sandbox.endpoints.apns!, key, tokens, count: perWindow, window };
    const run = name === 'raw_apns' ? await rawApnsRun({ ...options, payload: alertPayload(TITLE, BODY) }) : await nodeApnRun({ ...options, title: TITLE, body: BODY });
    const cpu = meter.read(run.sent);
    const counted = (await sandbox.count('apns')) - base;
    runs.push({ ...run, stand_in_counted: counted, cpu });
    progress(`${name} window ${window}: ${run.per_s}/s`);
    if (!best || run.per_s > best.per_s) best = run;
  }
  const result = {
    benchmark: name,
    description:
      name === 'raw_apns'
        ? 'The raw limit: one node:http2 session from the benchmark process, a fixed window of streams, the same requests (headers, ES256 token, payload) to the same stand-in process; best window'
        : '@parse/node-apn Provider (one HTTP/2 session, h2c via its createConnection pass-through), one Notification per message, a fixed window of sends in flight, the same stand-in process; best window',
    per_s: best!.per_s,
    best_window: best!.window,
    runs,
  };
  emit(result);
  return { ...result, best: best! };
}

/** nodemailer's pool with Herald's SMTP transport settings (10 connections, 100 messages each) straight to the stand-in. */
async function rawSmtpPhase(sandbox: SandboxChild): Promise<Row> {
  const url = new URL(sandbox.endpoints.smtp!);
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: 10,
    maxMessages: 100,
    host: url.hostname,
    port: Number(url.port),
    secure: false,
    ignoreTLS: true,
    logger: false,
  });
  const base = await sandbox.count('smtp');
  const meter = new CpuMeter(sandbox, undefined);
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < RAW_EMAILS) {
      const i = next++;
      try {
        // What Herald's smtp provider hands nodemailer (smtp-provider.ts mailFor), text part included.
        await transport.sendMail({
          from: { name: SANDBOX_SMTP_FROM.name, address: SANDBOX_SMTP_FROM.email },
          to: `raw${i}@example.com`,
          subject: EMAIL_SUBJECT,
          html: EMAIL_HTML,
          text: 'Thank you\n\nYour order #1234 has shipped. Track it [https://example.com/o/1234].',
          messageId: `<${randomUUID()}@sandbox.herald.invalid>`,
          date: new Date(),
          xMailer: false,
        });
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: 10 }, worker));
  const elapsed = performance.now() - t0;
  transport.close();
  const sent = RAW_EMAILS - failed;
  const result = {
    benchmark: 'raw_smtp',
    description: `${RAW_EMAILS} emails from nodemailer's pool (10 connections, as Herald's smtp provider) straight to the SMTP stand-in: the bound without Herald`,
    per_s: Math.round((sent / elapsed) * 1000),
    failed,
    stand_in_counted: (await sandbox.count('smtp')) - base,
    cpu: meter.read(sent),
  };
  emit(result);
  return result;
}

/** Herald's APNs provider client alone (no outbox) against the same stand-in. */
async function apnsClientPhase(sandbox: SandboxChild, credentials: Awaited<ReturnType<typeof apnsSandboxCredentials>>, tokens: string[]): Promise<Row> {
  const base = await sandbox.count('apns');
  const meter = new CpuMeter(sandbox, undefined);
  const run = await apnsClientRun({ credentials, standIn: sandbox.endpoints.apns!, tokens, count: CLIENT_ONLY_PUSHES, window: 1000 });
  const result = {
    benchmark: 'herald_apns_client',
    description:
      "Herald's APNs provider client (createApnsClient: one HTTP/2 session, stream slots, cached ES256 token, payload and answer mapping) in this process, 1,000 sends in flight, straight to the same stand-in: the provider without the outbox",
    ...run,
    stand_in_counted: (await sandbox.count('apns')) - base,
    cpu: meter.read(run.sent as number),
  };
  emit(result);
  return result;
}

/** The outbox's SQL bound and the dispatcher's own loop, in this process, on a fresh store each. */
async function outboxPhases(dir: string): Promise<Row> {
  const runs: Row[] = [];
  for (const [n, batch] of [
    [OUTBOX_SINGLES, 1],
    [OUTBOX_MESSAGES, 100],
    [OUTBOX_MESSAGES, 500],
  ] as const) {
    runs.push(await outboxRawRun(path.join(dir, `outbox-${batch}`), n, batch));
  }
  const outboxRaw = {
    benchmark: 'outbox_raw',
    description:
      "Herald's SQLite outbox (SqliteCellStore.claimMessages + settleMessages, its schema, statements and pragmas: WAL, synchronous=FULL) claiming and settling N messages per transaction, no provider: the store's bound",
    runs,
  };
  emit(outboxRaw);
  const dispatcher = {
    benchmark: 'dispatcher_instant_provider',
    description:
      "Herald's Dispatcher with the delivery thread's options over a fresh store, a provider that answers 'sent' on the next event-loop turn: the dispatcher loop's own bound, and how many messages each claim and settle transaction carries",
    ...(await dispatcherRun(path.join(dir, 'dispatcher'), DISPATCHER_MESSAGES, 60_000)),
  };
  emit(dispatcher);
  return { outboxRaw, dispatcher };
}

/**
 * `herald start --data-dir <dir> --port <free> --log-level warn` with HERALD_SANDBOX=<control URL>
 * (the environment form of --sandbox): the first start prints the demo secret key and wires the
 * demo project's providers to that sandbox.
 */
async function startHerald(dir: string, sandbox: SandboxChild, nodeArgs: string[]): Promise<{ herald: HeraldChild; api: HeraldApi }> {
  const herald = await HeraldChild.start({ dataDir: dir, port: await freePort(), nodeArgs, env: { HERALD_SANDBOX: sandbox.controlUrl } });
  progress(`herald pid ${herald.pid} at ${herald.url}${herald.startupWarning ? ` (${herald.startupWarning})` : ''}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return { herald, api: { url: herald.url, agent, headers: { authorization: `Bearer ${herald.secretKey}` } } };
}

async function stopHerald(herald: HeraldChild, api: HeraldApi): Promise<void> {
  api.agent.destroy();
  const code = await herald.stop();
  if (code !== 0) progress(`herald exited with ${String(code)}\n${herald.output}`);
}

async function main(): Promise<void> {
  const backgroundAtStart = await waitForQuiet();
  const started = performance.now();
  const loadAtStart = os.loadavg().map((l) => round(l, 2));
  const only = env.BENCH_ONLY ? env.BENCH_ONLY.split(',') : ['herald', 'raw', 'peer', 'smtp', 'client', 'outbox'];
  const sandboxDir = tempDir('sandbox');
  const heraldDir = tempDir('herald');
  const emailDir = tempDir('herald-email');
  const nodeArgs = env.BENCH_HERALD_NODE_ARGS ? env.BENCH_HERALD_NODE_ARGS.split(' ').filter(Boolean) : [];
  progress(`load average ${loadAtStart.join(' ')}; other processes use ${backgroundAtStart} cores`);
  const sandbox = await SandboxChild.start({ dataDir: sandboxDir, keep: 1000 });
  progress(`sandbox control API at ${sandbox.controlUrl}`);
  const tokens = Array.from({ length: PUSH_RECIPIENTS }, () => randomBytes(32).toString('hex'));
  let push: Row | undefined;
  let email: Row | undefined;
  let peakRssMb: number | undefined;
  let herald: HeraldChild | undefined;
  try {
    if (only.includes('herald')) {
      // Two Herald processes, one per channel, so that a push phase that timed out leaves no backlog
      // in front of the emails (the dispatcher claims in lane and due-time order across providers).
      const pushHerald = await startHerald(heraldDir, sandbox, nodeArgs);
      herald = pushHerald.herald;
      const pushWarmUp = await warmUp(herald, pushHerald.api, 'push');
      progress(`push probe delivered: ${JSON.stringify(pushWarmUp)}`);
      await setupPushRecipients(herald, pushHerald.api, tokens);
      push = await heraldPushPhase(sandbox, herald, pushHerald.api, heraldDir);
      const pushPeak = round(herald.statusMb('VmHWM'));
      await stopHerald(herald, pushHerald.api);
      herald = undefined;
      const emailHerald = await startHerald(emailDir, sandbox, nodeArgs);
      herald = emailHerald.herald;
      const emailWarmUp = await warmUp(herald, emailHerald.api, 'email');
      progress(`email probe delivered: ${JSON.stringify(emailWarmUp)}`);
      await setupEmailRecipients(herald, emailHerald.api);
      email = await heraldEmailPhase(sandbox, herald, emailHerald.api, emailDir);
      const emailPeak = round(herald.statusMb('VmHWM'));
      await stopHerald(herald, emailHerald.api);
      herald = undefined;
      peakRssMb = Math.max(pushPeak, emailPeak);
      emit({
        benchmark: 'herald_memory',
        description: 'VmHWM (peak resident set) of each Herald process, worker threads included; peak_rss_mb is the larger',
        peak_rss_mb: peakRssMb,
        push_herald_peak_rss_mb: pushPeak,
        email_herald_peak_rss_mb: emailPeak,
        sandbox_peak_rss_mb: round(sandbox.statusMb('VmHWM')),
      });
    }
    // A key of our own, registered with the same stand-in process through its control API
    // (what apnsSandboxCredentials does for the demo project), so this process can sign valid tokens.
    const credentials = await apnsSandboxCredentials(sandbox);
    const key: ApnsKey = { teamId: credentials.team_id, keyId: credentials.key_id, privateKeyPem: credentials.private_key, topic: credentials.topic };
    const raw = only.includes('raw') ? await clientPhase('raw_apns', sandbox, key, tokens) : undefined;
    const peer = only.includes('peer') ? await clientPhase('peer_node_apn', sandbox, key, tokens) : undefined;
    const rawSmtp = only.includes('smtp') ? await rawSmtpPhase(sandbox) : undefined;
    const client = only.includes('client') ? await apnsClientPhase(sandbox, credentials, tokens) : undefined;
    const outbox = only.includes('outbox') ? await outboxPhases(heraldDir) : undefined;
    if (!push || !email || !raw || !peer || !rawSmtp || !client || !outbox || peakRssMb === undefined) return;
    emit(summarise({ push, email, raw, peer, rawSmtp, client, outbox, peakRssMb, loadAtStart, backgroundAtStart, started }));
  } finally {
    await herald?.stop();
    await sandbox.stop();
    if (!KEEP_DATA) for (const dir of [sandboxDir, heraldDir, emailDir]) fs.rmSync(dir, { recursive: true, force: true });
    else progress(`data kept in ${sandboxDir}, ${heraldDir} and ${emailDir}`);
  }
}

function summarise(r: { push: Row; email: Row; raw: Row; peer: Row; rawSmtp: Row; client: Row; outbox: Row; peakRssMb: number; loadAtStart: number[]; backgroundAtStart: number; started: number }): Row {
  const pushPerS = r.push.push_per_s as number;
  const rawPerS = r.raw.per_s as number;
  const peerPerS = r.peer.per_s as number;
  const pushCpu = r.push.cpu as Row;
  const others = [r.push, r.email].map((p) => (p.cpu as Row).other_processes_cpu_cores as number);
  for (const runs of [r.raw.runs, r.peer.runs] as Row[][]) for (const run of runs) others.push((run.cpu as Row).other_processes_cpu_cores as number);
  const summary: Row & { targets: Record<string, Row> } = {
    benchmark: 'summary',
    push_per_s: pushPerS,
    push_p50_ms: (r.push.queue_to_delivered_ms as Row).p50,
    push_p99_ms: (r.push.queue_to_delivered_ms as Row).p99,
    push_steady_per_s: r.push.steady_push_per_s,
    push_complete: r.push.complete,
    pushes_delivered: r.push.delivered,
    raw_push_per_s: rawPerS,
    push_to_raw_ratio: round(pushPerS / rawPerS, 3),
    peer_push_per_s: peerPerS,
    push_to_peer_ratio: round(pushPerS / peerPerS, 3),
    peer: `@parse/node-apn ${String(((r.peer.runs as Row[])[0] as { version?: string }).version)}`,
    email_per_s: r.email.email_per_s,
    email_complete: r.email.complete,
    emails_delivered: r.email.delivered,
    email_p99_ms: (r.email.queue_to_delivered_ms as Row).p99,
    raw_smtp_per_s: r.rawSmtp.per_s,
    herald_apns_client_per_s: r.client.per_s,
    outbox_raw_per_s_by_batch: Object.fromEntries(((r.outbox.outboxRaw as Row).runs as Row[]).map((run) => [String(run.batch), run.per_s])),
    dispatcher_instant_provider_per_s: (r.outbox.dispatcher as Row).per_s,
    dispatcher_messages_per_claim: (r.outbox.dispatcher as Row).messages_per_claim,
    dispatcher_messages_per_settle: (r.outbox.dispatcher as Row).messages_per_settle,
    peak_rss_mb: r.peakRssMb,
    herald_us_per_push: pushCpu.herald_us_per_message,
    stand_in_us_per_push_herald: pushCpu.sandbox_us_per_message,
    pushes: PUSHES,
    emails: EMAILS,
    machine: machine(),
    herald_commit: gitCommit(),
    loadavg_at_start: r.loadAtStart,
    loadavg_at_end: os.loadavg().map((l) => round(l, 2)),
    other_processes_cpu_cores_at_start: r.backgroundAtStart,
    other_processes_cpu_cores_max: Math.max(...others),
    machine_quiet: Math.max(...others) < 0.25,
    total_s: round((performance.now() - r.started) / 1000),
    targets: {},
  };
  for (const [name, t] of Object.entries(TARGETS)) {
    const actual = summary[name] as number;
    const met = Number.isFinite(actual) && (t.op === '>=' ? actual >= t.value : t.op === '>' ? actual > t.value : actual <= t.value);
    summary.targets[name] = { target: `${t.op} ${t.value}`, actual, met: met ? 'met' : 'missed' };
  }
  return summary;
}

await main();
