/**
 * What the targeting benchmark asks of Herald, in one place: the cell store's targeting reads
 * (bulk matching, estimate, one profile's facts) and the single-profile evaluator, called the way
 * Herald's campaign and trigger code calls them.
 */
import type { Segment } from '../../src/targeting/segment-model.ts';
import type { SegmentEstimate, TargetingOptions } from '../../src/targeting/targeting-reads.ts';
import { eventNeeds } from '../../src/targeting/targeting-reads.ts';
import { evaluateSegment } from '../../src/targeting/evaluate-profile.ts';
import { SqliteCellStore } from '../../src/storage/sqlite/sqlite-cell-store.ts';
import { ThreadedSqliteReader } from '../../src/runtime/sqlite-query-runner.ts';

/**
 * Where the store runs its long reads (segment streams, estimates): `thread` is what `herald start`
 * gives every SQLite cell (a query thread, rows come back by message); `in-process` is the
 * store's default, on the calling thread.
 */
export type ReaderPlacement = 'thread' | 'in-process';

export interface MatchedBatch {
  ids: readonly number[];
}

export class HeraldTargeting {
  readonly #eventNeeds = new WeakMap<Segment, Map<string, number | null>>();

  private constructor(
    private readonly store: SqliteCellStore,
    private readonly projectId: string,
    private readonly options: TargetingOptions,
  ) {}

  /** Opens the cell store as Herald's cell runtime does (migrations run, long reads placed as asked). */
  static async open(
    file: string,
    projectId: string,
    options: TargetingOptions,
    reader: ReaderPlacement,
  ): Promise<HeraldTargeting> {
    const store = await SqliteCellStore.open(file, { create: false });
    if (reader === 'thread') store.useQueryRunner(new ThreadedSqliteReader(store.file));
    return new HeraldTargeting(store, projectId, options);
  }

  /** The segment's profile ids, in the batches Herald streams them in. */
  async *matchingIds(segment: Segment): AsyncIterable<MatchedBatch> {
    for await (const batch of this.store.matchingProfiles(this.projectId, segment, this.options))
      yield { ids: batch.map((p) => p.id) };
  }

  estimate(segment: Segment): Promise<SegmentEstimate> {
    return this.store.estimateSegment(this.projectId, segment, this.options);
  }

  /** Is this profile in the segment now? null when there is no such profile. */
  async isMember(customId: string, segment: Segment): Promise<boolean | null> {
    let events = this.#eventNeeds.get(segment);
    if (!events) {
      events = eventNeeds(segment, this.options.nowMs, this.options.resolveSegment);
      this.#eventNeeds.set(segment, events);
    }
    const facts = await this.store.profileFacts(this.projectId, customId, { events });
    if (!facts) return null;
    return evaluateSegment(segment, facts, {
      nowMs: this.options.nowMs,
      resolveSegment: this.options.resolveSegment,
      resolveAudience: this.options.resolveAudience,
    });
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
