import type { Clock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { backoffMs, sleep, type RetryPolicy } from '../core/retry.ts';
import { Applier, RecordFailedError, StoreUnavailableError } from '../ingest/applier.ts';
import type { IngestLog } from '../ingest/ingest-log.ts';
import type { CellStore } from '../storage/cell-store.ts';

export type ApplierState = 'starting' | 'running' | 'store_unavailable' | 'log_unavailable' | 'retrying_record';

export interface ApplierStatus {
  state: ApplierState;
  appliedSeq: number;
  lastError: string | null;
  /** When the store last committed a batch, or null. */
  lastAppliedAt: number | null;
  heartbeatAt: number;
}

export interface ApplierLoopOptions {
  openStore: () => Promise<CellStore>;
  openLog: () => Promise<IngestLog>;
  clock: Clock;
  logger: Logger;
  maxAttempts: number;
  batchSize: number;
  retentionMs: number;
  onStatus: (status: ApplierStatus) => void;
  pruneEveryMs?: number;
  idleWaitMs?: number;
  gatherMs?: number;
}

const STORE_RETRY: RetryPolicy = { initialMs: 100, maxMs: 5_000, multiplier: 2 };
const RECORD_RETRY: RetryPolicy = { initialMs: 100, maxMs: 2_000, multiplier: 2 };

/**
 * Runs one cell's applier until stopped: opens the store and log (retrying while they are down),
 * applies batches, sleeps when caught up until woken, backs off and probes while the store is
 * unavailable (I3: only this cell waits; I6: it resumes by itself), and prunes the log past its
 * retention.
 */
const LONG_STEP_MS = 100;
const LOCK_GAP_MS = 5;

export class ApplierLoop {
  readonly #o: ApplierLoopOptions;
  #wake: (() => void) | undefined;
  #status: ApplierStatus;
  #store: CellStore | undefined;
  #log: IngestLog | undefined;
  #applier: Applier | undefined;
  #lastPruneAt = 0;
  /** The first refresh of the planner's statistics comes a minute after start, then every quarter hour. */
  #nextOptimizeAt: number;

  constructor(options: ApplierLoopOptions) {
    this.#o = options;
    this.#status = { state: 'starting', appliedSeq: 0, lastError: null, lastAppliedAt: null, heartbeatAt: options.clock.now() };
    this.#nextOptimizeAt = options.clock.now() + 60_000;
  }

  /** New records were appended: stop idling. */
  wake(): void {
    this.#wake?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const applier = await this.#ready();
        const started = this.#o.clock.now();
        const result = await applier.step();
        const tookMs = this.#o.clock.now() - started;
        failures = 0;
        this.#report({
          state: 'running',
          appliedSeq: result.appliedSeq,
          lastError: null,
          ...(result.consumed > 0 ? { lastAppliedAt: this.#o.clock.now() } : {}),
        });
        await this.#maybePrune(applier.appliedSeq);
        await this.#maybeOptimize();
        if (result.consumed === 0) await this.#idle(signal);
        // A small batch means records trickle in: gather a few milliseconds' worth before the next
        // commit, so a steady stream of single writes costs one store commit per gather, not each.
        else if (result.consumed < this.#o.batchSize / 10) await sleep(this.#o.gatherMs ?? 10, signal);
        // After a long transaction (a large send materialised), leave the store's write lock free
        // for a moment: on SQLite the delivery thread waits for it, and back-to-back batches would
        // starve it for as long as the backlog lasts.
        else if (tookMs >= LONG_STEP_MS) await sleep(LOCK_GAP_MS, signal);
      } catch (error) {
        failures++;
        const delay = await this.#onError(coerceError(error), failures);
        await sleep(delay, signal);
      }
    }
    await this.#closeAll();
  }

  async #ready(): Promise<Applier> {
    if (this.#applier) return this.#applier;
    this.#log ??= await this.#open(() => this.#o.openLog(), 'log');
    this.#store ??= await this.#open(() => this.#o.openStore(), 'store');
    const applier = new Applier({
      log: this.#log,
      store: this.#store,
      clock: this.#o.clock,
      logger: this.#o.logger,
      maxAttempts: this.#o.maxAttempts,
      batchSize: this.#o.batchSize,
    });
    await applier.init();
    this.#applier = applier;
    return applier;
  }

  async #open<T>(fn: () => Promise<T>, what: 'log' | 'store'): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      const e = coerceError(error);
      throw what === 'store' ? new StoreUnavailableError(e.message, { cause: e }) : Object.assign(e, { logFailure: true });
    }
  }

  async #onError(error: Error, failures: number): Promise<number> {
    if (error instanceof RecordFailedError) {
      this.#report({ state: 'retrying_record', lastError: error.message });
      return backoffMs(RECORD_RETRY, error.attempt);
    }
    if (error instanceof StoreUnavailableError) {
      if (failures === 1) this.#o.logger.error({ err: error.message }, 'cell store unavailable; backing off and probing');
      this.#report({ state: 'store_unavailable', lastError: error.message });
      // Reopen from scratch: a store that was replaced or repaired must be seen anew.
      await this.#closeStore();
      return backoffMs(STORE_RETRY, failures);
    }
    if (failures === 1) this.#o.logger.error({ err: error.message }, 'ingest log unavailable to the applier');
    this.#report({ state: 'log_unavailable', lastError: error.message });
    await this.#closeLog();
    return backoffMs(STORE_RETRY, failures);
  }

  async #idle(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.#o.idleWaitMs ?? 250);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  /** Keeps the store's planner statistics current as data grows (targeting's plans depend on them). */
  async #maybeOptimize(): Promise<void> {
    const now = this.#o.clock.now();
    if (!this.#store || now < this.#nextOptimizeAt) return;
    this.#nextOptimizeAt = now + 15 * 60_000;
    try {
      await this.#store.optimize();
    } catch (error) {
      this.#o.logger.warn({ err: coerceError(error).message }, 'refreshing the store statistics failed; will retry');
    }
  }

  async #maybePrune(appliedSeq: number): Promise<void> {
    const now = this.#o.clock.now();
    if (!this.#log || now - this.#lastPruneAt < (this.#o.pruneEveryMs ?? 60_000)) return;
    this.#lastPruneAt = now;
    try {
      let removed: number;
      do {
        removed = await this.#log.prune({ appliedSeq, cutoffMs: now - this.#o.retentionMs, maxRows: 5_000, nowMs: now });
      } while (removed === 5_000);
    } catch (error) {
      this.#o.logger.warn({ err: coerceError(error).message }, 'log prune failed; will retry');
    }
  }

  #report(patch: Partial<ApplierStatus>): void {
    const next = { ...this.#status, ...patch, heartbeatAt: this.#o.clock.now() };
    const changed =
      next.state !== this.#status.state ||
      next.appliedSeq !== this.#status.appliedSeq ||
      next.lastError !== this.#status.lastError ||
      next.heartbeatAt - this.#status.heartbeatAt >= 1000;
    this.#status = next;
    if (changed) this.#o.onStatus(next);
  }

  async #closeStore(): Promise<void> {
    this.#applier = undefined;
    const store = this.#store;
    this.#store = undefined;
    await store?.close().catch(() => undefined);
  }

  async #closeLog(): Promise<void> {
    this.#applier = undefined;
    const log = this.#log;
    this.#log = undefined;
    await log?.close().catch(() => undefined);
  }

  async #closeAll(): Promise<void> {
    await this.#closeStore();
    await this.#closeLog();
  }
}
