/**
 * `npm run bench:ingest` — Herald's durable ingestion, measured against the limits that bound it,
 * in one run on one machine (DESIGN.md §8). Prints one JSON object per benchmark, then a summary.
 *
 *  (a) http_single / http_batch: acknowledged durable throughput of a real `herald start` child
 *      process over HTTP (autocannon in this process), with p50/p99 acknowledgement latency.
 *  (b) raw_sqlite_log: the same log rows appended straight to a SQLite file from this process
 *      with the same durability (WAL, synchronous=FULL, many rows per fsync'd transaction), using
 *      Herald's own SqliteIngestLog, so the schema, statements and pragmas are identical.
 *  (c) applier: Applier.step() in-process over a backlog of realistic profile.update records
 *      (the headline figure), plus the running Herald's own drain rate after the HTTP phases;
 *      store_raw: the applier's bound, the same store writes straight through better-sqlite3.
 *  Baselines: http_baseline_*: the same HTTP load against a bare node:http server (the protocol
 *      limit with this load generator on these cores).
 *  (d) peak RSS (VmHWM) of the Herald process, worker threads included.
 *
 * Knobs (environment): BENCH_DURATION_S (10), BENCH_SINGLE_CONNECTIONS (64),
 * BENCH_BATCH_CONNECTIONS (64), BENCH_BATCH_ITEMS (100), BENCH_APPLIER_RECORDS (200000),
 * BENCH_HERALD_NODE_ARGS (extra node flags for Herald, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
 * BENCH_HERALD_BIN (another Herald entry point, e.g. a compiled build, for what-if comparisons),
 * BENCH_ONLY (comma list of herald,baseline,raw,applier,store: a partial run, no summary),
 * BENCH_WAIT_QUIET_S (wait up to this long for other processes to use < 0.25 cores before starting; 0),
 * BENCH_REQUIRE_QUIET=1 (then do not run at all if the machine did not get quiet; exit code 3),
 * BENCH_KEEP_DATA=1 (keep the temp data dirs).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon, { type Result } from 'autocannon';
import { systemClock } from '../src/core/clock.ts';
import { silentLogger } from '../src/core/logger.ts';
import { Applier } from '../src/ingest/applier.ts';
import type { ApplyTx } from '../src/storage/cell-store.ts';
import type { AppendRequest } from '../src/ingest/ingest-log.ts';
import { encodeRecord, type ProfileUpdateRecord } from '../src/ingest/records.ts';
import { validateProfileUpdates } from '../src/ingest/request-validation.ts';
import { SqliteCellStore } from '../src/storage/sqlite/sqlite-cell-store.ts';
import { SqliteIngestLog } from '../src/storage/sqlite/sqlite-ingest-log.ts';
import { openSqlite } from '../src/storage/sqlite/sqlite-db.ts';
import { PROFILE_COLUMNS } from '../src/storage/sql-cell-store-reads.ts';
import {
  BaselineChild,
  freePort,
  HeraldChild,
  processCpuSeconds,
  processWriteBytes,
  round,
  statusMb,
  systemBusySeconds,
  systemDiskWriteBytes,
  systemStealSeconds,
  threadCpuDelta,
} from './lib/herald-child.ts';
import { bodyJson, bodySequence, PROFILES } from './lib/payloads.ts';

const env = process.env;
const num = (name: string, fallback: number): number => (env[name] ? Number(env[name]) : fallback);
const DURATION_S = num('BENCH_DURATION_S', 10);
const SINGLE_CONNECTIONS = num('BENCH_SINGLE_CONNECTIONS', 64);
const BATCH_CONNECTIONS = num('BENCH_BATCH_CONNECTIONS', 64);
const BATCH_ITEMS = num('BENCH_BATCH_ITEMS', 100);
const APPLIER_RECORDS = num('BENCH_APPLIER_RECORDS', 200_000);
const APPLIER_BATCH = 5_000; // Herald's default HERALD_APPLIER_BATCH
const DRAIN_TIMEOUT_MS = 45_000;
const RAW_GROUPS = [100, 1_000, 10_000];
const BASELINE_S = Math.max(2, Math.round(DURATION_S / 2));
const RAW_SECONDS_PER_GROUP = 3;
const KEEP_DATA = env.BENCH_KEEP_DATA === '1';

const TARGETS = {
  single_events_per_s: 10_000,
  single_p99_ms: 25,
  batch_events_per_s: 100_000,
  batch_to_raw_ratio: 0.5,
  applier_events_per_s: 100_000,
  peak_rss_mb: 400,
};

function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function tempDir(label: string): string {
  // Under the OS temp dir, which here is on the same ext4 disk as the repository (not tmpfs):
  // fsync costs what it costs in production on this machine.
  return fs.mkdtempSync(path.join(os.tmpdir(), `herald-bench-${label}-`));
}

/** The commit the benchmark ran against, with "+dirty" when src/ has uncommitted changes. */
function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin', 'package.json'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return null;
  }
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism(),
    cpu_model: cpus[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    total_mem_mb: Math.round(os.totalmem() / 1048576),
    tmpdir: os.tmpdir(),
  };
}

// ---------------------------------------------------------------------------------------------
// (a) HTTP against a real Herald

interface HttpPhase {
  name: string;
  items: number;
  connections: number;
  durationS: number;
  offset: number;
}

interface LoadTarget {
  url: string;
  pid: number;
  authorization?: string;
}

interface Accounting {
  target_cpu_cores: number;
  load_generator_cpu_cores: number;
  other_processes_cpu_cores: number;
  machine_busy_cores: number;
  hypervisor_steal_cores: number;
  target_disk_write_mb_per_s: number;
  machine_disk_write_mb_per_s: number;
}

/** Runs autocannon against a target and accounts for every core: the target, this process, the rest. */
async function runLoad(
  target: LoadTarget,
  phase: HttpPhase,
): Promise<{ result: Result; accounting: Accounting; rssMaxMb: number }> {
  const next = bodySequence(phase.items, phase.offset);
  const cpu0 = processCpuSeconds(target.pid);
  const sys0 = systemBusySeconds();
  const steal0 = systemStealSeconds();
  const disk0 = systemDiskWriteBytes();
  const write0 = processWriteBytes(target.pid);
  const self0 = process.cpuUsage();
  let rssMaxMb = 0;
  const sampler = setInterval(() => {
    rssMaxMb = Math.max(rssMaxMb, statusMb(target.pid, 'VmRSS'));
  }, 200);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.authorization) headers.authorization = target.authorization;
  const result = await autocannon({
    url: target.url,
    connections: phase.connections,
    duration: phase.durationS,
    requests: [
      {
        method: 'POST',
        path: '/v1/profiles/update',
        headers,
        setupRequest: (request) => ({ ...request, body: next() }),
      },
    ],
  });
  clearInterval(sampler);
  const seconds = result.duration;
  const self = process.cpuUsage(self0);
  const targetCpu = processCpuSeconds(target.pid) - cpu0;
  const selfCpu = (self.user + self.system) / 1e6;
  const systemCpu = systemBusySeconds() - sys0;
  const accounting: Accounting = {
    target_cpu_cores: round(targetCpu / seconds, 2),
    load_generator_cpu_cores: round(selfCpu / seconds, 2),
    other_processes_cpu_cores: round(Math.max(0, systemCpu - targetCpu - selfCpu) / seconds, 2),
    machine_busy_cores: round(systemCpu / seconds, 2),
    hypervisor_steal_cores: round((systemStealSeconds() - steal0) / seconds, 2),
    target_disk_write_mb_per_s: round((processWriteBytes(target.pid) - write0) / 1048576 / seconds, 1),
    machine_disk_write_mb_per_s: round((systemDiskWriteBytes() - disk0) / 1048576 / seconds, 1),
  };
  return { result, accounting, rssMaxMb };
}

function latencyOf(result: Result): Record<string, number> {
  return {
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    p99_9: result.latency.p99_9,
    max: result.latency.max,
    mean: round(result.latency.mean, 2),
  };
}

async function httpPhase(
  herald: HeraldChild,
  phase: HttpPhase,
  record: boolean,
): Promise<Record<string, unknown>> {
  const before = await herald.ready();
  const threads0 = herald.threadCpu();
  const { result, accounting, rssMaxMb } = await runLoad(
    { url: herald.url, pid: herald.pid, authorization: `Bearer ${herald.secretKey}` },
    phase,
  );
  const after = await herald.ready();
  const seconds = result.duration;
  const acked = result['2xx'];
  const threads = threadCpuDelta(herald.pid, threads0, herald.threadCpu());
  const perEvent = (cores: number): number =>
    round((cores * seconds * 1e6) / Math.max(1, acked * phase.items), 1);
  const mainUs = round(
    ((threads.find((t) => t.thread === 'main')?.cpu_s ?? 0) * 1e6) / Math.max(1, acked * phase.items),
    1,
  );
  const out = {
    benchmark: phase.name,
    description: `herald: POST /v1/profiles/update, ${phase.items} item(s) of 1 event each per request (distinct custom_ids over ${PROFILES} profiles), ${phase.connections} connections, ${phase.durationS} s; only acknowledged (202 = durable) requests count`,
    connections: phase.connections,
    events_per_request: phase.items,
    duration_s: seconds,
    requests_acked: acked,
    events_acked: acked * phase.items,
    events_per_s: Math.round((acked * phase.items) / seconds),
    requests_per_s: Math.round(acked / seconds),
    latency_ms: latencyOf(result),
    non_2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    status_codes: Object.fromEntries(
      Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]),
    ),
    log_rows_appended: after.log.head_seq - before.log.head_seq,
    rows_applied_meanwhile: after.store.applied_seq - before.store.applied_seq,
    applier_lag_at_end: after.lag,
    herald_threads_cpu_s: threads.slice(0, 6),
    ...accounting,
    // CPU cost per acknowledged event, which contention from other processes barely moves, and the
    // rate those costs would allow on this machine if Herald and the load generator had it to themselves.
    herald_cpu_us_per_event: perEvent(accounting.target_cpu_cores),
    herald_main_thread_cpu_us_per_event: mainUs,
    load_generator_cpu_us_per_event: perEvent(accounting.load_generator_cpu_cores),
    cpu_bound_events_per_s: Math.round(
      Math.min(
        1e6 / mainUs,
        (os.availableParallelism() * 1e6) /
          (perEvent(accounting.target_cpu_cores) + perEvent(accounting.load_generator_cpu_cores)),
      ),
    ),
    herald_rss_max_mb: round(rssMaxMb),
  };
  if (record) emit(out);
  return out;
}

/** The same load against the bare HTTP baseline server: the protocol limit here. */
async function baselinePhase(phase: HttpPhase): Promise<Record<string, unknown>> {
  const server = await BaselineChild.start(await freePort());
  try {
    await runLoad(server, { ...phase, durationS: 2, offset: phase.offset + 5_000_000 }); // warm-up
    const { result, accounting } = await runLoad(server, phase);
    const out = {
      benchmark: phase.name,
      description: `protocol baseline: bare node:http server (JSON.parse, answer 202; no framework, auth, validation or durability), same load generator, ${phase.items} item(s) per request, ${phase.connections} connections, ${phase.durationS} s`,
      connections: phase.connections,
      events_per_request: phase.items,
      duration_s: result.duration,
      events_per_s: Math.round((result['2xx'] * phase.items) / result.duration),
      requests_per_s: Math.round(result['2xx'] / result.duration),
      latency_ms: latencyOf(result),
      non_2xx: result.non2xx,
      errors: result.errors,
      ...accounting,
      server_cpu_us_per_event: round(
        (accounting.target_cpu_cores * 1e6) / Math.max(1, (result['2xx'] * phase.items) / result.duration),
        1,
      ),
      load_generator_cpu_us_per_event: round(
        (accounting.load_generator_cpu_cores * 1e6) /
          Math.max(1, (result['2xx'] * phase.items) / result.duration),
        1,
      ),
    };
    emit(out);
    return out;
  } finally {
    await server.stop();
  }
}

/** Polls /v1/ready until the applier has caught up (or the timeout): the live applier's drain rate. */
async function drainPhase(herald: HeraldChild): Promise<Record<string, unknown>> {
  const start = await herald.ready();
  const t0 = performance.now();
  const cpu0 = herald.cpuSeconds();
  let last = start;
  while (last.lag > 0 && performance.now() - t0 < DRAIN_TIMEOUT_MS) {
    await sleep(100);
    last = await herald.ready();
  }
  const seconds = (performance.now() - t0) / 1000;
  const applied = last.store.applied_seq - start.store.applied_seq;
  const out = {
    benchmark: 'herald_applier_drain',
    description:
      'the running Herald draining the backlog left by the HTTP phases, no load: applied rows (1 event each) / s, from GET /v1/ready, 100 ms polling',
    backlog_at_start: start.lag,
    applied,
    seconds: round(seconds, 2),
    caught_up: last.lag === 0,
    events_per_s: seconds > 0 && applied > 0 ? Math.round(applied / seconds) : null,
    herald_cpu_cores: round((herald.cpuSeconds() - cpu0) / seconds, 2),
  };
  emit(out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Records exactly as Herald writes them: the same validation and encoding of the same bodies.

const BENCH_PROJECT = 'prj_bench';

function recordsFor(first: number, count: number, nowMs: number): ProfileUpdateRecord[] {
  const out: ProfileUpdateRecord[] = [];
  for (let n = first; n < first + count; n += 100) {
    out.push(
      ...validateProfileUpdates(
        JSON.parse(bodyJson(n, Math.min(100, first + count - n))),
        BENCH_PROJECT,
        nowMs,
      ),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// (b) the raw limit: the same rows straight into a SQLite log file

async function rawPhase(dir: string, herald: { batchEventsPerS: number }): Promise<Record<string, unknown>> {
  const now = Date.now();
  const pool = recordsFor(50_000_000, 20_000, now).map(encodeRecord);
  const avgBytes = Math.round(pool.reduce((n, p) => n + p.length, 0) / pool.length);
  const groups: Record<string, unknown>[] = [];
  let best = { rows: 0, eventsPerS: 0 };
  for (const groupRows of RAW_GROUPS) {
    const log = await SqliteIngestLog.open(path.join(dir, `raw-${groupRows}.db`));
    let cursor = 0;
    const nextRequests = (): AppendRequest[] => {
      // Herald appends one AppendRequest per HTTP request; a group commit holds several.
      const requests: AppendRequest[] = [];
      for (let r = 0; r < groupRows; r += BATCH_ITEMS) {
        const size = Math.min(BATCH_ITEMS, groupRows - r);
        if (cursor + size > pool.length) cursor = 0;
        requests.push({ payloads: pool.slice(cursor, cursor + size) });
        cursor += size;
      }
      return requests;
    };
    const commitMs: number[] = [];
    let rows = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < RAW_SECONDS_PER_GROUP * 1000) {
      const requests = nextRequests();
      const c0 = performance.now();
      await log.append(requests, Date.now());
      commitMs.push(performance.now() - c0);
      rows += groupRows;
    }
    const seconds = (performance.now() - t0) / 1000;
    await log.close();
    commitMs.sort((a, b) => a - b);
    const eventsPerS = Math.round(rows / seconds);
    groups.push({
      rows_per_transaction: groupRows,
      transactions: commitMs.length,
      events_per_s: eventsPerS,
      transaction_ms: { p50: round(percentile(commitMs, 50), 2), p99: round(percentile(commitMs, 99), 2) },
    });
    if (eventsPerS > best.eventsPerS) best = { rows: groupRows, eventsPerS };
  }
  const out = {
    benchmark: 'raw_sqlite_log',
    description:
      "the same log rows (Herald's encoded profile.update records, 1 event each) appended from this process with Herald's SqliteIngestLog: WAL, synchronous=FULL, one transaction (one fsync) per group; raw limit = best group",
    avg_row_bytes: avgBytes,
    groups,
    events_per_s: best.eventsPerS,
    best_rows_per_transaction: best.rows,
    batch_to_raw_ratio: round(herald.batchEventsPerS / best.eventsPerS, 3),
  };
  emit(out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// (c) the applier, in-process, over a backlog

async function applierPhase(dir: string): Promise<Record<string, unknown>> {
  const log = await SqliteIngestLog.open(path.join(dir, 'applier-log.db'));
  const store = await SqliteCellStore.open(path.join(dir, 'applier-store.db'));
  // Fill the backlog in chunks, timing Herald's own request validation and encoding on the way.
  const now = Date.now();
  let validateMs = 0;
  let encodeMs = 0;
  const bodies: string[] = [];
  for (let n = 0; n < APPLIER_RECORDS; n += 100) bodies.push(bodyJson(n, Math.min(100, APPLIER_RECORDS - n)));
  for (let b = 0; b < bodies.length; b += 100) {
    const requests: AppendRequest[] = [];
    for (const body of bodies.slice(b, b + 100)) {
      const v0 = performance.now();
      const records = validateProfileUpdates(JSON.parse(body), BENCH_PROJECT, now);
      const v1 = performance.now();
      const payloads = records.map(encodeRecord);
      encodeMs += performance.now() - v1;
      validateMs += v1 - v0;
      requests.push({ payloads });
    }
    await log.append(requests, now);
  }

  // Time the parts of each step: log read, decode (until the plan asks for installations),
  // the plan's store reads, the pure reduce, and writing effects + committing.
  const parts = { read: 0, decode: 0, load: 0, reduce: 0, writeCommit: 0 };
  const innerRead = log.read.bind(log);
  log.read = async (after, limit) => {
    const t = performance.now();
    const rows = await innerRead(after, limit);
    parts.read += performance.now() - t;
    return rows;
  };
  const innerApply = store.applyBatch.bind(store);
  store.applyBatch = async (logId, from, to, plan) => {
    const t = performance.now();
    let planMs = 0;
    const stats = await innerApply(logId, from, to, async (tx) => {
      const p0 = performance.now();
      let firstLoad = 0;
      let loadMs = 0;
      const timed: ApplyTx = {
        loadInstallationsOf: (keys) => tx.loadInstallationsOf(keys),
        loadSuppressed: (projectId, channel, addresses) => tx.loadSuppressed(projectId, channel, addresses),
        loadInstallations: async (keys) => {
          const l = performance.now();
          if (firstLoad === 0) firstLoad = l;
          const result = await tx.loadInstallations(keys);
          loadMs += performance.now() - l;
          return result;
        },
        loadProfiles: async (keys) => {
          const l = performance.now();
          if (firstLoad === 0) firstLoad = l;
          const result = await tx.loadProfiles(keys);
          loadMs += performance.now() - l;
          return result;
        },
      };
      const effects = await plan(timed);
      planMs = performance.now() - p0;
      const decodeMs = (firstLoad || performance.now()) - p0;
      parts.decode += decodeMs;
      parts.load += loadMs;
      parts.reduce += planMs - decodeMs - loadMs;
      return effects;
    });
    parts.writeCommit += performance.now() - t - planMs;
    return stats;
  };

  const applier = new Applier({
    log,
    store,
    clock: systemClock,
    logger: silentLogger,
    maxAttempts: 5,
    batchSize: APPLIER_BATCH,
  });
  await applier.init();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let consumed = 0;
  let steps = 0;
  let inserted = 0;
  let profilesWritten = 0;
  for (;;) {
    const result = await applier.step();
    if (result.consumed === 0) break;
    consumed += result.consumed;
    inserted += result.stats?.eventsInserted ?? 0;
    profilesWritten += result.stats?.profilesWritten ?? 0;
    steps++;
  }
  const seconds = (performance.now() - t0) / 1000;
  await store.close();
  await log.close();
  const perEventUs = (ms: number): number => round((ms * 1000) / consumed, 2);
  const out = {
    benchmark: 'applier',
    description: `in-process Applier.step() (SqliteIngestLog -> SqliteCellStore, batch ${APPLIER_BATCH}) until caught up, over a backlog of ${APPLIER_RECORDS} profile.update records of 1 event each on ${PROFILES} profiles (first half creates profiles, second half updates them)`,
    records: consumed,
    events_inserted: inserted,
    profiles_written: profilesWritten,
    steps,
    seconds: round(seconds, 2),
    events_per_s: Math.round(inserted / seconds),
    us_per_event: {
      log_read: perEventUs(parts.read),
      decode: perEventUs(parts.decode),
      load_profiles: perEventUs(parts.load),
      plan_reduce: perEventUs(parts.reduce),
      write_and_commit: perEventUs(parts.writeCommit),
      total: round((seconds * 1e6) / consumed, 2),
    },
    api_side_us_per_event: {
      validate: round((validateMs * 1000) / APPLIER_RECORDS, 2),
      encode: round((encodeMs * 1000) / APPLIER_RECORDS, 2),
    },
    bench_rss_growth_mb: round((process.memoryUsage().rss - rss0) / 1048576),
  };
  emit(out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// (c') the store's raw limit: the applier's writes for the same events, straight to the store

/**
 * The bound on the applier: the rows the applier writes for the same backlog (look up each
 * profile, insert or rewrite it, insert the event, bump its count, move the offset), with the
 * store's own schema, pragmas and SQL, in transactions of the applier's batch size — but no log
 * read, no JSON decoding, no planning, no per-batch objects.
 */
async function storeRawPhase(dir: string, applierEventsPerS: number): Promise<Row> {
  const file = path.join(dir, 'store-raw.db');
  await (await SqliteCellStore.open(file)).close();
  const db = openSqlite(file);
  const s = {
    profile: db.prepare(`SELECT ${PROFILE_COLUMNS} FROM profiles WHERE project_id = ? AND custom_id = ?`),
    insertProfile: db.prepare(
      `INSERT INTO profiles (project_id, custom_id, email, email_marketing, phone, sms_marketing, language, region, timezone,
         attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    updateProfile: db.prepare(
      `UPDATE profiles SET email = ?, email_marketing = ?, phone = ?, sms_marketing = ?, language = ?, region = ?,
         timezone = ?, attributes = ?, updated_at = ? WHERE id = ?`,
    ),
    insertEvent: db.prepare(
      `INSERT INTO events (profile_id, name, time, client_id, attributes, received_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    upsertCount: db.prepare(
      `INSERT INTO event_counts (profile_id, name, count, first_at, last_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (profile_id, name) DO UPDATE SET count = count + excluded.count,
         first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)`,
    ),
    putOffset: db.prepare(
      `INSERT INTO ingest_offsets (log_id, applied_seq, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (log_id) DO UPDATE SET applied_seq = excluded.applied_seq, updated_at = excluded.updated_at`,
    ),
  };
  const now = Date.now();
  const records = recordsFor(0, APPLIER_RECORDS, now);
  const t0 = performance.now();
  for (let b = 0; b < records.length; b += APPLIER_BATCH) {
    db.exec('BEGIN IMMEDIATE');
    for (const r of records.slice(b, b + APPLIER_BATCH)) {
      const row = s.profile.get(r.project_id, r.custom_id) as { id: number; attributes: string } | undefined;
      let id: number;
      if (row) {
        id = row.id;
        s.updateProfile.run(null, null, null, null, null, null, null, row.attributes, now, id);
      } else {
        id = (
          s.insertProfile.get(
            r.project_id,
            r.custom_id,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            '{}',
            now,
            now,
          ) as { id: number }
        ).id;
      }
      for (const e of r.events ?? []) {
        s.insertEvent.run(
          id,
          e.name,
          e.time_ms,
          e.id ?? null,
          e.attributes ? JSON.stringify(e.attributes) : null,
          now,
        );
        s.upsertCount.run(id, e.name, 1, e.time_ms, e.time_ms);
      }
    }
    s.putOffset.run('bench', b + APPLIER_BATCH, now);
    db.exec('COMMIT');
  }
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  const eventsPerS = Math.round(records.length / seconds);
  const out = {
    benchmark: 'store_raw',
    description: `the applier's store writes for the same ${records.length} events (profile lookup, insert or rewrite, event insert, count upsert, offset) with the store's schema, pragmas (WAL, synchronous=FULL) and SQL, ${APPLIER_BATCH} per transaction, straight from this process: no log read, decoding or planning`,
    seconds: round(seconds, 2),
    events_per_s: eventsPerS,
    us_per_event: round((seconds * 1e6) / records.length, 2),
    applier_to_store_raw_ratio: round(applierEventsPerS / eventsPerS, 3),
  };
  emit(out);
  return out;
}

// ---------------------------------------------------------------------------------------------

type Part = 'herald' | 'baseline' | 'raw' | 'applier' | 'store';
const PARTS: Part[] = ['herald', 'baseline', 'raw', 'applier', 'store'];

async function heraldPhases(
  dirs: string[],
): Promise<{ single: Row; batch: Row; drain: Row; peakRssMb: number }> {
  const heraldDir = tempDir('herald');
  dirs.push(heraldDir);
  const nodeArgs = env.BENCH_HERALD_NODE_ARGS ? env.BENCH_HERALD_NODE_ARGS.split(/\s+/).filter(Boolean) : [];
  const herald = await HeraldChild.start({
    dataDir: heraldDir,
    port: await freePort(),
    nodeArgs,
    bin: env.BENCH_HERALD_BIN || undefined,
  });
  try {
    emit({
      benchmark: 'setup',
      herald_pid: herald.pid,
      herald_url: herald.url,
      herald_commit: gitCommit(),
      data_dir: heraldDir,
      rss_idle_mb: round(herald.statusMb('VmRSS')),
      ...(herald.startupWarning ? { startup_warning: herald.startupWarning } : {}),
      machine: machine(),
    });
    // Warm-up (JIT, SQLite caches); not reported.
    await httpPhase(
      herald,
      { name: 'warmup_single', items: 1, connections: 32, durationS: 3, offset: 90_000_000 },
      false,
    );
    await httpPhase(
      herald,
      { name: 'warmup_batch', items: BATCH_ITEMS, connections: 16, durationS: 2, offset: 91_000_000 },
      false,
    );
    await drainPhaseQuiet(herald);
    const single = await httpPhase(
      herald,
      { name: 'http_single', items: 1, connections: SINGLE_CONNECTIONS, durationS: DURATION_S, offset: 0 },
      true,
    );
    await drainPhaseQuiet(herald);
    const batch = await httpPhase(
      herald,
      {
        name: 'http_batch',
        items: BATCH_ITEMS,
        connections: BATCH_CONNECTIONS,
        durationS: DURATION_S,
        offset: 10_000_000,
      },
      true,
    );
    const drain = await drainPhase(herald);
    const peakRssMb = round(herald.statusMb('VmHWM'));
    emit({
      benchmark: 'herald_memory',
      description:
        'VmHWM (peak resident set) of the Herald process, its worker threads included, over the whole run',
      peak_rss_mb: peakRssMb,
      rss_now_mb: round(herald.statusMb('VmRSS')),
    });
    return { single, batch, drain, peakRssMb };
  } finally {
    const code = await herald.stop();
    if (code !== 0) process.stderr.write(`herald exited with ${String(code)}\n${herald.output}\n`);
  }
}

/** CPU cores other processes use right now (sampled over 2 s). */
async function backgroundCores(): Promise<number> {
  const s0 = systemBusySeconds();
  const self0 = process.cpuUsage();
  await sleep(2000);
  const self = process.cpuUsage(self0);
  return round((systemBusySeconds() - s0 - (self.user + self.system) / 1e6) / 2, 2);
}

/** Waits (at most BENCH_WAIT_QUIET_S) until the machine is quiet; returns the background load found. */
async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + num('BENCH_WAIT_QUIET_S', 0) * 1000;
  let cores = await backgroundCores();
  while (cores >= 0.25 && Date.now() < deadline) {
    process.stderr.write(`waiting for a quiet machine: other processes use ${cores} cores\n`);
    await sleep(10_000);
    cores = await backgroundCores();
  }
  return cores;
}

async function main(): Promise<void> {
  const backgroundAtStart = await waitForQuiet();
  if (backgroundAtStart >= 0.25 && env.BENCH_REQUIRE_QUIET === '1') {
    process.stderr.write(
      `not quiet (other processes use ${backgroundAtStart} cores); BENCH_REQUIRE_QUIET=1, so not running\n`,
    );
    process.exitCode = 3;
    return;
  }
  const started = performance.now();
  const loadAtStart = os.loadavg().map((l) => round(l, 2));
  const only = env.BENCH_ONLY ? (env.BENCH_ONLY.split(',') as Part[]) : PARTS;
  const dirs: string[] = [];
  const localDir = tempDir('local');
  dirs.push(localDir);
  try {
    const h = only.includes('herald') ? await heraldPhases(dirs) : undefined;
    const baselineSingle = only.includes('baseline')
      ? await baselinePhase({
          name: 'http_baseline_single',
          items: 1,
          connections: SINGLE_CONNECTIONS,
          durationS: BASELINE_S,
          offset: 20_000_000,
        })
      : undefined;
    const baselineBatch = only.includes('baseline')
      ? await baselinePhase({
          name: 'http_baseline_batch',
          items: BATCH_ITEMS,
          connections: BATCH_CONNECTIONS,
          durationS: BASELINE_S,
          offset: 30_000_000,
        })
      : undefined;
    const raw = only.includes('raw')
      ? await rawPhase(localDir, { batchEventsPerS: (h?.batch.events_per_s as number | undefined) ?? NaN })
      : undefined;
    const applier = only.includes('applier') ? await applierPhase(localDir) : undefined;
    const store = only.includes('store')
      ? await storeRawPhase(localDir, (applier?.events_per_s as number | undefined) ?? NaN)
      : undefined;
    if (!h || !baselineSingle || !baselineBatch || !raw || !applier || !store) return; // a partial run (BENCH_ONLY) has no summary
    emit(
      summarise({
        ...h,
        baselineSingle,
        baselineBatch,
        raw,
        applier,
        store,
        loadAtStart,
        backgroundAtStart,
        started,
      }),
    );
  } finally {
    if (!KEEP_DATA) for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

type Row = Record<string, unknown>;

function summarise(r: {
  single: Row;
  batch: Row;
  drain: Row;
  peakRssMb: number;
  baselineSingle: Row;
  baselineBatch: Row;
  raw: Row;
  applier: Row;
  store: Row;
  loadAtStart: number[];
  backgroundAtStart: number;
  started: number;
}): Row {
  const singleEvents = r.single.events_per_s as number;
  const batchEvents = r.batch.events_per_s as number;
  const others = [r.single, r.batch, r.baselineSingle, r.baselineBatch].map(
    (p) => p.other_processes_cpu_cores as number,
  );
  const summary = {
    benchmark: 'summary',
    single_events_per_s: singleEvents,
    single_p50_ms: (r.single.latency_ms as { p50: number }).p50,
    single_p99_ms: (r.single.latency_ms as { p99: number }).p99,
    batch_events_per_s: batchEvents,
    batch_p50_ms: (r.batch.latency_ms as { p50: number }).p50,
    batch_p99_ms: (r.batch.latency_ms as { p99: number }).p99,
    raw_events_per_s: r.raw.events_per_s as number,
    raw_rows_per_transaction: r.raw.best_rows_per_transaction as number,
    batch_to_raw_ratio: r.raw.batch_to_raw_ratio as number,
    applier_events_per_s: r.applier.events_per_s as number,
    applier_source: 'in-process Applier.step() over a backlog (benchmark "applier")',
    store_raw_events_per_s: r.store.events_per_s as number,
    applier_to_store_raw_ratio: r.store.applier_to_store_raw_ratio as number,
    herald_live_drain_events_per_s: r.drain.events_per_s as number | null,
    http_baseline_single_events_per_s: r.baselineSingle.events_per_s as number,
    http_baseline_batch_events_per_s: r.baselineBatch.events_per_s as number,
    single_to_http_baseline_ratio: round(singleEvents / (r.baselineSingle.events_per_s as number), 3),
    batch_to_http_baseline_ratio: round(batchEvents / (r.baselineBatch.events_per_s as number), 3),
    peak_rss_mb: r.peakRssMb,
    connections: { single: SINGLE_CONNECTIONS, batch: BATCH_CONNECTIONS },
    load_generator: 'autocannon in the benchmark process, on the same cores as Herald',
    machine: machine(),
    herald_commit: gitCommit(),
    other_processes_cpu_cores_max: Math.max(...others),
    machine_quiet: Math.max(...others) < 0.25,
    loadavg_at_start: r.loadAtStart,
    other_processes_cpu_cores_at_start: r.backgroundAtStart,
    total_s: round((performance.now() - r.started) / 1000),
    targets: {} as Record<string, { target: string; actual: number | null; met: boolean }>,
  };
  const check = (name: keyof typeof TARGETS, op: '>=' | '<='): void => {
    const actual = summary[name];
    const target = TARGETS[name];
    const met = Number.isFinite(actual) && (op === '>=' ? actual >= target : actual <= target);
    summary.targets[name] = { target: `${op} ${target}`, actual, met };
  };
  check('single_events_per_s', '>=');
  check('single_p99_ms', '<=');
  check('batch_events_per_s', '>=');
  check('batch_to_raw_ratio', '>=');
  check('applier_events_per_s', '>=');
  check('peak_rss_mb', '<=');
  return summary;
}

/** Lets the applier catch up between phases so that one phase's backlog does not load the next. */
async function drainPhaseQuiet(herald: HeraldChild): Promise<void> {
  const t0 = performance.now();
  while ((await herald.ready()).lag > 0 && performance.now() - t0 < DRAIN_TIMEOUT_MS) await sleep(100);
}

await main();
