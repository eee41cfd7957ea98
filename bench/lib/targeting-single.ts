/**
 * The single-profile phase of the targeting benchmark: random profiles, each through Herald's
 * profileFacts + evaluateSegment on one of the segments in turn (what a trigger or a journey branch
 * does), timed one by one; every answer must equal the profile's membership in the bulk result.
 */
import { round } from './herald-child.ts';
import { Prng, customIdOf } from './targeting-data.ts';
import type { HeraldTargeting } from './targeting-herald.ts';
import { percentiles, sortedHas } from './targeting-measure.ts';
import { BENCH_SEGMENTS } from './targeting-segments.ts';

const WARMUP = 300;

export interface BulkMembers {
  name: string;
  /** The segment's members, ascending. */
  ids: Int32Array;
}

interface Reporter {
  profiles: number;
  evaluations: number;
  emit: (result: Record<string, unknown>) => void;
  progress: (message: string) => void;
}

export async function singleProfilePhase(
  herald: HeraldTargeting,
  bulk: readonly BulkMembers[],
  { profiles, evaluations, emit, progress }: Reporter,
): Promise<Record<string, unknown>> {
  const rng = new Prng(0x51791e);
  const latencies: number[] = [];
  const bySegment = bulk.map((): number[] => []);
  let wrong = 0;
  let missing = 0;
  for (let i = -WARMUP; i < evaluations; i++) {
    const k = (i + WARMUP) % bulk.length;
    const segment = BENCH_SEGMENTS[k]!;
    const id = 1 + rng.int(profiles);
    const t0 = performance.now();
    const member = await herald.isMember(customIdOf(id), segment.segment);
    const ms = performance.now() - t0;
    if (i < 0) continue; // warm-up: JIT, statement caches
    latencies.push(ms);
    bySegment[k]!.push(ms);
    if (member === null) missing++;
    else if (member !== sortedHas(bulk[k]!.ids, id) && wrong++ < 5) {
      progress(
        `MISMATCH single profile ${customIdOf(id)} (id ${id}) on ${segment.name}: evaluator ${member}, bulk ${!member}`,
      );
    }
  }
  const p = percentiles(latencies);
  progress(`single-profile evaluations: p50 ${p.p50.toFixed(3)} ms, p99 ${p.p99.toFixed(3)} ms`);
  const result = {
    benchmark: 'single_profile',
    evaluations,
    segments: 'each of the six in turn',
    disagreements: wrong,
    profiles_not_found: missing,
    agree: wrong === 0 && missing === 0,
    latency_ms: { p50: round(p.p50, 3), p90: round(p.p90, 3), p99: round(p.p99, 3), max: round(p.max, 3) },
    p99_ms_by_segment: Object.fromEntries(
      bulk.map((b, k) => [b.name, round(percentiles(bySegment[k]!).p99, 3)]),
    ),
    per_s: Math.round(evaluations / (latencies.reduce((a, b) => a + b, 0) / 1000)),
  };
  emit(result);
  return result;
}
