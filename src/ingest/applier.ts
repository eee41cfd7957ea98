import type { Clock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { ApplyStats, BatchEffects, CellStore } from '../storage/cell-store.ts';
import { emptyEffects, OffsetConflictError } from '../storage/cell-store.ts';
import type { IngestLog, LogEntry } from './ingest-log.ts';
import { CatalogCache, planBatch, ProfileIdCache, type PlannedRecord } from './apply-plan.ts';
import { decodeRecord, type IngestRecord } from './records.ts';

/** The store cannot take work now; the runner backs off and probes (I3, I6). Nothing is counted against records. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** One record failed and will be retried after a backoff; after `maxAttempts` it is quarantined (I5). */
export class RecordFailedError extends Error {
  override name = 'RecordFailedError';
  constructor(
    readonly seq: number,
    readonly attempt: number,
    cause: Error,
  ) {
    super(`log record ${seq} failed (attempt ${attempt}): ${cause.message}`, { cause });
  }
}

export interface ApplierOptions {
  log: IngestLog;
  store: CellStore;
  clock: Clock;
  logger: Logger;
  maxAttempts: number;
  batchSize: number;
  /** Payload bytes per batch, so a backlog of large records cannot exhaust memory. */
  batchBytes?: number;
}

export const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;
/**
 * Rows a batch may create, roughly: a send is one record but one outbox row per recipient, so a
 * batch ends after the send that reaches this many (always at least one record). It keeps one
 * store transaction — its memory, and the time it holds the write lock — bounded.
 */
export const MAX_BATCH_WEIGHT = 20_000;

function weightOf(record: IngestRecord): number {
  if (record.kind === 'audience.members') return Math.max(1, (record.custom_ids?.length ?? 0) + (record.install_ids?.length ?? 0));
  if (record.kind !== 'send.request') return 1;
  const r = record.recipients;
  return Math.max(1, (r.custom_ids?.length ?? 0) + (r.install_ids?.length ?? 0) + (r.emails?.length ?? 0) + (r.phone_numbers?.length ?? 0));
}

/** The longest prefix of `planned` within MAX_BATCH_WEIGHT (at least its first record). */
export function withinWeight(planned: PlannedRecord[]): PlannedRecord[] {
  let weight = 0;
  for (let i = 0; i < planned.length; i++) {
    weight += weightOf(planned[i]!.record);
    if (weight > MAX_BATCH_WEIGHT && i > 0) return planned.slice(0, i);
  }
  return planned;
}

export interface StepResult {
  /** Log records consumed (applied or quarantined). */
  consumed: number;
  appliedSeq: number;
  stats?: ApplyStats;
}

function projectOf(payload: string): string | null {
  try {
    const value = JSON.parse(payload) as { project_id?: unknown };
    return typeof value.project_id === 'string' ? value.project_id : null;
  } catch {
    return null;
  }
}

/**
 * Consumes one cell's log in order and applies it to the cell's store, committing effects and
 * the log offset together (I1: exactly once). A batch that fails is retried record by record, so
 * that one bad record is found, retried a bounded number of times and then quarantined while the
 * rest keep flowing (I5). An unavailable store is reported, never blamed on a record.
 */
export class Applier {
  readonly #o: ApplierOptions;
  readonly #catalog = new CatalogCache();
  readonly #ids = new ProfileIdCache();
  readonly #attempts = new Map<number, number>();
  #logId = '';
  #appliedSeq = 0;
  /** After a failed batch, records up to this seq are applied one at a time. */
  #isolateThrough = 0;

  constructor(options: ApplierOptions) {
    this.#o = options;
  }

  get appliedSeq(): number {
    return this.#appliedSeq;
  }

  get logId(): string {
    return this.#logId;
  }

  async init(): Promise<void> {
    this.#logId = await this.#o.log.logId();
    this.#appliedSeq = await this.#guard(() => this.#o.store.appliedSeq(this.#logId));
  }

  /** Applies at most one batch. Throws StoreUnavailableError or RecordFailedError for the runner to back off. */
  async step(): Promise<StepResult> {
    const entries = await this.#o.log.read(
      this.#appliedSeq,
      this.#isolating() ? 1 : this.#o.batchSize,
      this.#o.batchBytes ?? DEFAULT_BATCH_BYTES,
    );
    if (entries.length === 0) return { consumed: 0, appliedSeq: this.#appliedSeq };
    try {
      const planned = withinWeight(entries.map((e) => ({ seq: e.seq, record: decodeRecord(e.payload) })));
      const stats = await this.#apply(planned);
      for (const p of planned) this.#attempts.delete(p.seq);
      return { consumed: planned.length, appliedSeq: this.#appliedSeq, stats };
    } catch (error) {
      return this.#onFailure(entries, coerceError(error));
    }
  }

  #isolating(): boolean {
    return this.#appliedSeq < this.#isolateThrough;
  }

  async #apply(planned: PlannedRecord[]): Promise<ApplyStats> {
    const from = this.#appliedSeq;
    const to = planned.at(-1)!.seq;
    let effects: BatchEffects | undefined;
    try {
      const stats = await this.#o.store.applyBatch(this.#logId, from, to, async (tx) => {
        effects = await planBatch(tx, planned, { catalog: this.#catalog, ids: this.#ids });
        return effects;
      });
      this.#appliedSeq = to;
      if (effects) this.#ids.absorb(effects);
      return stats;
    } catch (error) {
      // Another applier may have written, or this batch's plan was rolled back: trust nothing cached.
      this.#ids.clear();
      throw error;
    }
  }

  async #onFailure(entries: LogEntry[], error: Error): Promise<StepResult> {
    if (error instanceof OffsetConflictError) {
      // Another applier moved the offset: continue from where the store says we are.
      this.#appliedSeq = await this.#guard(() => this.#o.store.appliedSeq(this.#logId));
      return { consumed: 0, appliedSeq: this.#appliedSeq };
    }
    if (await this.#storeIsDown(error)) throw new StoreUnavailableError(error.message, { cause: error });
    if (entries.length > 1) {
      this.#isolateThrough = entries.at(-1)!.seq;
      this.#o.logger.warn({ err: error.message, from: entries[0]!.seq }, 'batch failed; applying its records one by one');
      return { consumed: 0, appliedSeq: this.#appliedSeq };
    }
    const entry = entries[0]!;
    const attempt = (this.#attempts.get(entry.seq) ?? 0) + 1;
    this.#attempts.set(entry.seq, attempt);
    if (attempt < this.#o.maxAttempts) throw new RecordFailedError(entry.seq, attempt, error);
    await this.#quarantine(entry, error, attempt);
    return { consumed: 1, appliedSeq: this.#appliedSeq };
  }

  async #quarantine(entry: LogEntry, error: Error, attempts: number): Promise<void> {
    const effects: BatchEffects = emptyEffects();
    effects.quarantined.push({
      seq: entry.seq,
      projectId: projectOf(entry.payload),
      payload: entry.payload,
      reason: error.message.slice(0, 2000),
      attempts,
    });
    await this.#guard(() => this.#o.store.applyBatch(this.#logId, this.#appliedSeq, entry.seq, () => Promise.resolve(effects)));
    this.#appliedSeq = entry.seq;
    this.#attempts.delete(entry.seq);
    this.#o.logger.error({ seq: entry.seq, reason: error.message, attempts }, 'log record quarantined');
  }

  /** A failure is the store's if the store says so, or if it no longer answers a probe. */
  async #storeIsDown(error: Error): Promise<boolean> {
    if (this.#o.store.isUnavailableError(error)) return true;
    try {
      await this.#o.store.ping();
      return false;
    } catch {
      return true;
    }
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      const e = coerceError(error);
      if (await this.#storeIsDown(e)) throw new StoreUnavailableError(e.message, { cause: e });
      throw e;
    }
  }
}
