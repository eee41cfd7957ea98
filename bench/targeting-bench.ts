/**
 * `npm run bench:targeting` — Herald's targeting (issue 4, "Performance"; DESIGN.md §8), against
 * the raw limit, in one run on one machine. Prints one JSON object per benchmark, then a summary
 * object (last line) with `segments` [{name, seconds, raw_seconds, ratio}], `estimate_seconds`,
 * `single_p99_ms` and `peak_rss_mb`.
 *
 *  Seed: BENCH_PROFILES (1,000,000) profiles and BENCH_EVENTS (20,000,000) events plus
 *      installations, event counts, catalog, audiences, two campaign sends with opens and clicks,
 *      generated deterministically (bench/lib/targeting-data.ts) into a SQLite cell store created
 *      by Herald's migrations. Seeding runs in a child process (its memory is not this process's);
 *      the file is cached under .bench/targeting/, keyed by generator version, store schema and
 *      sizes, and reused (BENCH_TARGETING_RESEED=1 forces a new one).
 *  (a) segment_bulk: six segments (bench/lib/targeting-segments.ts) streamed in full through the
 *      cell store's matchingProfiles, its long reads on a query thread as `herald start` places
 *      them; raw: the hand-written SQL for each on the same file through better-sqlite3 in this
 *      process. Alternating raw/Herald, BENCH_RUNS (3) times each, median. Both must return the
 *      same ids in id order (count + checksum), or the benchmark fails.
 *  (b) estimate: estimateSegment on the largest segment (median of BENCH_RUNS), checked against a
 *      hand-written count of the same figures, which is also timed.
 *  (c) single_profile: BENCH_SINGLE (10,000) random profiles, each through profileFacts +
 *      evaluateSegment on one of the six segments in turn; each answer must equal membership
 *      in the bulk result.
 *  (d) peak RSS (getrusage maxRSS) of this process: Herald's store, its query thread, the
 *      evaluator and the raw connection; not the seeding child.
 *
 * Knobs: BENCH_PROFILES, BENCH_EVENTS, BENCH_RUNS (3), BENCH_SINGLE (10000), BENCH_ONLY (comma list
 * of estimate,single: the phases after the bulk one, which always runs; "explain": only the plans),
 * BENCH_TARGETING_RESEED=1, BENCH_TARGETING_DIR,
 * BENCH_EXPLAIN=1 (first print Herald's SQL and both query plans for every segment),
 * BENCH_WAIT_QUIET_S (wait up to this long, after seeding, for other processes to use < 0.25 cores; 0),
 * BENCH_TARGETING_READER=in-process (the store's long reads on this thread, its default outside
 * `herald start`, instead of a query thread).
 */
import os from 'node:os';
import Database from 'better-sqlite3';
import type { SegmentEstimate } from '../src/targeting/targeting-reads.ts';
import { round } from './lib/herald-child.ts';
import { waitForQuiet, withOtherCpu } from './lib/targeting-machine.ts';
import { singleProfilePhase } from './lib/targeting-single.ts';
import { NOW_MS, PROJECT_ID } from './lib/targeting-data.ts';
import { explainSegments } from './lib/targeting-explain.ts';
import { HeraldTargeting, type ReaderPlacement } from './lib/targeting-herald.ts';
import { heraldRun, median, rawEstimate, rawRun, timed, type IdDigest } from './lib/targeting-measure.ts';
import { BENCH_SEGMENTS, resolveAudience, type BenchSegment } from './lib/targeting-segments.ts';
import { gitCommit, machine, seededFile, type SeededFile } from './lib/targeting-cache.ts';

const env = process.env;
const num = (name: string, fallback: number): number => (env[name] ? Number(env[name]) : fallback);
const PROFILES = num('BENCH_PROFILES', 1_000_000);
const EVENTS = num('BENCH_EVENTS', 20_000_000);
const RUNS = num('BENCH_RUNS', 3);
const SINGLE = num('BENCH_SINGLE', 10_000);
const READER = (env.BENCH_TARGETING_READER ?? 'thread') as ReaderPlacement;
type Part = 'explain' | 'estimate' | 'single';
const ONLY = (env.BENCH_ONLY?.split(',') ?? ['estimate', 'single']) as Part[];

const TARGETS = {
  segment_seconds: 2,
  segment_ratio: 1.5,
  estimate_seconds: 1,
  single_p99_ms: 2,
  peak_rss_mb: 1024,
} as const;

type Row = Record<string, unknown>;

function emit(result: Row): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function progress(message: string): void {
  process.stderr.write(`[bench:targeting ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const peakRssMb = (): number => round(process.resourceUsage().maxRSS / 1024);

interface BulkResult {
  name: string;
  seconds: number;
  raw_seconds: number;
  ratio: number;
  profiles: number;
  agree: boolean;
  otherCores: number;
  /** The segment's members, ascending (for the single-profile check). */
  ids: Int32Array;
}

function mismatch(segment: BenchSegment, herald: IdDigest, raw: IdDigest): string {
  return `segment ${segment.name}: Herald returned ${herald.count} profiles (checksum ${herald.checksum}${herald.ascending ? '' : ', NOT in id order'}), the hand-written query ${raw.count} (checksum ${raw.checksum})`;
}

async function bulkPhase(
  herald: HeraldTargeting,
  db: Database.Database,
  segment: BenchSegment,
): Promise<BulkResult> {
  const heraldSeconds: number[] = [];
  const rawSeconds: number[] = [];
  let first: { herald: IdDigest; raw: IdDigest } | undefined;
  const { otherCores } = await withOtherCpu(async () => {
    for (let run = 0; run < RUNS; run++) {
      const r = await timed(() => rawRun(db, segment.raw, run === 0));
      const h = await timed(() => heraldRun(herald, segment, run === 0));
      rawSeconds.push(r.seconds);
      heraldSeconds.push(h.seconds);
      first ??= { herald: h.value, raw: r.value };
      progress(
        `${segment.name} run ${run + 1}: Herald ${h.seconds.toFixed(3)} s, raw ${r.seconds.toFixed(3)} s, ${h.value.count} profiles`,
      );
    }
  });
  const { herald: h, raw: r } = first!;
  const agree = h.equals(r) && h.ascending;
  if (!agree) progress(`MISMATCH ${mismatch(segment, h, r)}`);
  const seconds = median(heraldSeconds);
  const raw = median(rawSeconds);
  const result = {
    benchmark: 'segment_bulk',
    name: segment.name,
    description: segment.description,
    segment: segment.segment,
    profiles: h.count,
    raw_profiles: r.count,
    checksum: h.checksum,
    raw_checksum: r.checksum,
    agree,
    seconds: round(seconds, 3),
    raw_seconds: round(raw, 3),
    ratio: round(seconds / raw, 2),
    runs_seconds: heraldSeconds.map((s) => round(s, 3)),
    raw_runs_seconds: rawSeconds.map((s) => round(s, 3)),
    other_processes_cpu_cores: otherCores,
  };
  emit(result);
  return {
    name: segment.name,
    seconds: result.seconds,
    raw_seconds: result.raw_seconds,
    ratio: result.ratio,
    profiles: h.count,
    agree,
    otherCores,
    ids: Int32Array.from(h.ids!),
  };
}

async function estimatePhase(
  herald: HeraldTargeting,
  db: Database.Database,
  largest: BenchSegment,
  members: number,
): Promise<Row> {
  const heraldSeconds: number[] = [];
  const rawSeconds: number[] = [];
  let estimate: SegmentEstimate | undefined;
  let raw: SegmentEstimate | undefined;
  for (let run = 0; run < RUNS; run++) {
    const r = await timed(() => rawEstimate(db, largest.raw, PROJECT_ID));
    const h = await timed(() => herald.estimate(largest.segment));
    rawSeconds.push(r.seconds);
    heraldSeconds.push(h.seconds);
    raw = r.value;
    estimate = h.value;
    progress(
      `estimate of ${largest.name} run ${run + 1}: Herald ${h.seconds.toFixed(3)} s, raw ${r.seconds.toFixed(3)} s`,
    );
  }
  const agree = JSON.stringify(estimate) === JSON.stringify(raw) && estimate?.total === members;
  if (!agree)
    progress(
      `MISMATCH estimate of ${largest.name}: Herald ${JSON.stringify(estimate)}, hand-written ${JSON.stringify(raw)}, bulk ${members}`,
    );
  const result = {
    benchmark: 'estimate',
    segment: largest.name,
    estimate,
    raw_estimate: raw,
    agree,
    seconds: round(median(heraldSeconds), 3),
    raw_seconds: round(median(rawSeconds), 3),
    ratio: round(median(heraldSeconds) / median(rawSeconds), 2),
    runs_seconds: heraldSeconds.map((s) => round(s, 3)),
  };
  emit(result);
  return result;
}

async function main(): Promise<void> {
  const started = performance.now();
  const seed = await seededFile(PROFILES, EVENTS, env.BENCH_TARGETING_RESEED === '1', progress);
  const backgroundAtStart = await waitForQuiet(num('BENCH_WAIT_QUIET_S', 0), progress);
  emit({
    benchmark: 'setup',
    ...seed,
    herald_reader: READER,
    other_processes_cpu_cores_at_start: backgroundAtStart,
    herald_commit: gitCommit(),
    machine: machine(),
    loadavg: os.loadavg().map((l) => round(l, 2)),
  });
  const options = { nowMs: NOW_MS, resolveAudience };
  if (env.BENCH_EXPLAIN === '1' || ONLY.includes('explain'))
    for (const plan of await explainSegments(seed.file, PROJECT_ID, BENCH_SEGMENTS, options)) emit(plan);
  if (ONLY.length === 1 && ONLY[0] === 'explain') return;
  const herald = await HeraldTargeting.open(seed.file, PROJECT_ID, options, READER);
  const db = new Database(seed.file, { readonly: true, fileMustExist: true });
  db.pragma('cache_size = -16384'); // as Herald's reader connection
  let failed = false;
  try {
    // Always: the estimate and the single-profile check need the bulk results.
    const bulk: BulkResult[] = [];
    for (const segment of BENCH_SEGMENTS) bulk.push(await bulkPhase(herald, db, segment));
    failed ||= bulk.some((b) => !b.agree);
    const largest = bulk.reduce((a, b) => (b.profiles > a.profiles ? b : a));
    const estimate = ONLY.includes('estimate')
      ? await estimatePhase(
          herald,
          db,
          BENCH_SEGMENTS.find((s) => s.name === largest.name)!,
          largest.profiles,
        )
      : undefined;
    failed ||= estimate?.agree === false;
    const single = ONLY.includes('single')
      ? await singleProfilePhase(herald, bulk, { profiles: PROFILES, evaluations: SINGLE, emit, progress })
      : undefined;
    failed ||= single?.agree === false;
    emit(summarise(bulk, estimate, single, seed, started, failed));
  } finally {
    db.close();
    await herald.close();
  }
  if (failed) {
    process.stderr.write(
      'bench:targeting FAILED: Herald and the hand-written queries disagree (see MISMATCH above)\n',
    );
    process.exitCode = 1;
  }
}

function summarise(
  bulk: readonly BulkResult[],
  estimate: Row | undefined,
  single: Row | undefined,
  seed: SeededFile,
  started: number,
  failed: boolean,
): Row {
  const singleLatency = (single?.latency_ms as { p99: number; p50: number } | undefined) ?? null;
  const summary = {
    benchmark: 'summary',
    segments: bulk.map(({ name, seconds, raw_seconds, ratio, profiles, agree }) => ({
      name,
      seconds,
      raw_seconds,
      ratio,
      profiles,
      agree,
    })),
    estimate_seconds: (estimate?.seconds as number | undefined) ?? null,
    estimate_raw_seconds: (estimate?.raw_seconds as number | undefined) ?? null,
    estimate_segment: (estimate?.segment as string | undefined) ?? null,
    single_p50_ms: singleLatency?.p50 ?? null,
    single_p99_ms: singleLatency?.p99 ?? null,
    peak_rss_mb: peakRssMb(),
    results_agree: !failed,
    herald_reader: READER,
    other_processes_cpu_cores_max: bulk.length ? Math.max(...bulk.map((b) => b.otherCores)) : null,
    profiles: PROFILES,
    events: EVENTS,
    db_mb: seed.db_mb,
    seed_seconds: seed.seed_seconds,
    seeded_this_run: seed.seeded_this_run,
    herald_commit: gitCommit(),
    machine: machine(),
    total_s: round((performance.now() - started) / 1000),
    targets: {} as Record<string, { target: string; actual: number | null; met: boolean }>,
  };
  const check = (name: string, actual: number | null, limit: number): void => {
    summary.targets[name] = {
      target: `<= ${limit}`,
      actual,
      met: actual !== null && Number.isFinite(actual) && actual <= limit,
    };
  };
  for (const s of bulk) {
    check(`${s.name}_seconds`, s.seconds, TARGETS.segment_seconds);
    check(`${s.name}_ratio`, s.ratio, TARGETS.segment_ratio);
  }
  check('estimate_seconds', summary.estimate_seconds, TARGETS.estimate_seconds);
  check('single_p99_ms', summary.single_p99_ms, TARGETS.single_p99_ms);
  check('peak_rss_mb', summary.peak_rss_mb, TARGETS.peak_rss_mb);
  return summary;
}

await main();
