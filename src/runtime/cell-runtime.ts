import type { Worker } from 'node:worker_threads';
import type { HeraldConfig } from '../config/config.ts';
import type { CellRecord } from '../control/control-store.ts';
import type { Clock } from '../core/clock.ts';
import { coerceError, HeraldError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { AppendFailedError, GroupCommitter } from '../ingest/group-commit.ts';
import type { AppendOutcome, AppendRequest, LogAppender } from '../ingest/ingest-log.ts';
import type { CellStore } from '../storage/cell-store.ts';
import { backendFor, openLog, openStore } from '../storage/backends.ts';
import { ReopeningLog } from './reopening-log.ts';
import type { ApplierStatus } from './applier-loop.ts';
import { startThread } from './threads.ts';
import { SqliteCellStore } from '../storage/sqlite/sqlite-cell-store.ts';
import { ThreadedSqliteReader } from './sqlite-query-runner.ts';
import type { DeliveryStatus } from './delivery-thread.ts';
import type { OrchestratorStatus } from './orchestrator-thread.ts';
import { ThreadedLogAppender } from './threaded-log-appender.ts';

export interface CellStatus {
  cellId: string;
  log: { ok: boolean; headSeq: number; lastError: string | null };
  store: { ok: boolean; appliedSeq: number; state: ApplierStatus['state']; lastError: string | null };
  lag: number;
}

export interface CellDeps {
  config: HeraldConfig;
  clock: Clock;
  logger: Logger;
  /** Delivery: where the sandbox's stand-ins are, where this Herald is reached, the unsubscribe key. */
  delivery: { sandboxEndpoints: Record<string, string>; publicUrl: string; unsubscribeKey: string } | undefined;
}
type Deps = CellDeps;

const RETRY_AFTER_SECONDS = 2;
/** How long a COMMIT already under way may still take before the API answers APPEND_UNCONFIRMED. */
const COMMIT_GRACE_MS = 5_000;

/**
 * Everything one process runs for one cell: the log appender behind a group committer (on a
 * thread when the log blocks), the applier on its own thread, and a store connection for reads.
 * Appends never depend on the store (I2), and nothing here waits on another cell (I3).
 */
export class CellRuntime {
  readonly cell: CellRecord;
  readonly #deps: Deps;
  #appender: (LogAppender & { close(): Promise<void>; headSeq(): Promise<number> }) | undefined;
  #committer: GroupCommitter | undefined;
  #applier: Worker | undefined;
  #delivery: Worker | undefined;
  #deliveryStatus: DeliveryStatus | undefined;
  #orchestrator: Worker | undefined;
  #orchestratorStatus: OrchestratorStatus | undefined;
  #readStore: Promise<CellStore> | undefined;
  #headSeq = 0;
  /** Records of appends under way, counted against the backlog limit before they commit. */
  #reserved = 0;
  /** Why the log last failed; 'starting' until the log first answered. */
  #logError: string | null = 'starting';
  #applierStatus: ApplierStatus;
  readonly #waiters = new Set<{ seq: number; resolve: (ok: boolean) => void }>();
  #stopping = false;
  #wakeQueued = false;
  #logProbe: Promise<void> = Promise.resolve();

  constructor(cell: CellRecord, deps: Deps) {
    this.cell = cell;
    this.#deps = deps;
    this.#applierStatus = { state: 'starting', appliedSeq: 0, lastError: null, lastAppliedAt: null, heartbeatAt: 0 };
  }

  /**
   * Starts the cell's threads. Never fails because a store or log is down: the appender and the
   * applier open them on use and keep retrying, and the API answers 503 meanwhile (I2, I3).
   */
  start(): void {
    const { config, logger } = this.#deps;
    const ctx = { dataDir: config.dataDir, create: true };
    this.#appender = backendFor(this.cell.logUrl).logCapabilities.blocking
      ? new ThreadedLogAppender({ logUrl: this.cell.logUrl, dataDir: config.dataDir }, `herald-log-${this.cell.id}`, logger)
      : new ReopeningLog(() => openLog(this.cell.logUrl, ctx));
    this.#committer = new GroupCommitter(this.#appender, this.#deps.clock, {
      timeoutMs: config.appendTimeoutMs,
      commitGraceMs: COMMIT_GRACE_MS,
    });
    this.#startApplier();
    this.#startDelivery();
    this.#startOrchestrator();
    this.#logProbe = this.#appender.headSeq().then(
      (head) => {
        this.#headSeq = Math.max(this.#headSeq, head);
        if (this.#logError === 'starting') this.#logError = null;
      },
      (error: unknown) => {
        this.#logError = coerceError(error).message;
        logger.error({ cell: this.cell.id, err: this.#logError }, 'ingest log unavailable at start');
      },
    );
  }

  /**
   * Resolves once the log has answered its first request (its writer thread is up and the file or
   * database open), or after `timeoutMs`: the server listens only then, so its first clients are
   * not answered 503 while a thread starts. A log that is down does not hold the start up (I2).
   */
  async logReady(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#logProbe, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  #startApplier(): void {
    const { config, logger } = this.#deps;
    const worker = startThread(
      'applier-thread',
      {
        cellId: this.cell.id,
        storeUrl: this.cell.storeUrl,
        logUrl: this.cell.logUrl,
        dataDir: config.dataDir,
        maxAttempts: config.applierMaxAttempts,
        batchSize: config.applierBatchSize,
        retentionMs: config.logRetentionMs,
        logLevel: config.logLevel,
      },
      `herald-applier-${this.cell.id}`,
      // Batches are bounded (records and payload bytes), so a modest ceiling is ample.
      { maxHeapMb: 384 },
    );
    worker.on('message', (message: { type: 'status'; status: ApplierStatus }) => {
      if (message.type === 'status') this.#onApplierStatus(message.status);
    });
    worker.on('error', (error) => logger.error({ cell: this.cell.id, err: error.message }, 'applier thread failed'));
    worker.on('exit', () => {
      this.#applier = undefined;
      if (this.#stopping) return;
      logger.error({ cell: this.cell.id }, 'applier thread exited; restarting in 1 s');
      setTimeout(() => {
        if (!this.#stopping) this.#startApplier();
      }, 1000).unref();
    });
    this.#applier = worker;
  }

  /** The delivery thread: claims this cell's outbox and sends (restarted if it dies). */
  #startDelivery(): void {
    const delivery = this.#deps.delivery;
    if (!delivery) return;
    this.#supervise('delivery', { cellId: this.cell.id, storeUrl: this.cell.storeUrl, config: this.#deps.config, ...delivery }, 512, (worker) => (this.#delivery = worker), (message) => {
      if (message.type === 'delivery') this.#deliveryStatus = message.status as DeliveryStatus;
    });
  }

  /** The orchestrator thread: launches campaigns and fans them out into the outbox (restarted if it dies). */
  #startOrchestrator(): void {
    if (!this.#deps.delivery) return;
    this.#supervise('orchestrator', { cellId: this.cell.id, storeUrl: this.cell.storeUrl, config: this.#deps.config }, 512, (worker) => (this.#orchestrator = worker), (message) => {
      if (message.type === 'orchestrator') this.#orchestratorStatus = message.status as OrchestratorStatus;
      // Messages were queued: let the delivery thread claim them now.
      else if (message.type === 'queued') this.#delivery?.postMessage({ type: 'wake' });
    });
  }

  /** Starts `<name>-thread` for this cell and restarts it a second after it exits, until the cell stops. */
  #supervise(
    name: 'delivery' | 'orchestrator',
    data: Record<string, unknown>,
    maxHeapMb: number,
    set: (worker: Worker | undefined) => void,
    onMessage: (message: { type: string; status?: unknown }) => void,
  ): void {
    const worker = startThread(`${name}-thread`, data, `herald-${name}-${this.cell.id}`, { maxHeapMb });
    worker.on('message', onMessage);
    worker.on('error', (error) => this.#deps.logger.error({ cell: this.cell.id, err: error.message }, `${name} thread failed`));
    worker.on('exit', () => {
      set(undefined);
      if (this.#stopping) return;
      this.#deps.logger.error({ cell: this.cell.id }, `${name} thread exited; restarting in 1 s`);
      setTimeout(() => {
        if (!this.#stopping) this.#supervise(name, data, maxHeapMb, set, onMessage);
      }, 1000).unref();
    });
    set(worker);
  }

  /** A campaign changed (scheduled, resumed…): let the orchestrator look now. */
  wakeOrchestrator(): void {
    this.#orchestrator?.postMessage({ type: 'wake' });
  }

  get orchestratorStatus(): OrchestratorStatus | undefined {
    return this.#orchestratorStatus;
  }

  get deliveryStatus(): DeliveryStatus | undefined {
    return this.#deliveryStatus;
  }

  #onApplierStatus(status: ApplierStatus): void {
    // New messages may have been materialised: let the delivery thread look now.
    if (status.appliedSeq > this.#applierStatus.appliedSeq) {
      this.#delivery?.postMessage({ type: 'wake' });
      // …and applied events may trigger journeys: let the orchestrator read them now.
      this.#orchestrator?.postMessage({ type: 'wake' });
    }
    this.#applierStatus = status;
    for (const waiter of this.#waiters) {
      if (status.appliedSeq >= waiter.seq) {
        this.#waiters.delete(waiter);
        waiter.resolve(true);
      }
    }
  }

  get headSeq(): number {
    return this.#headSeq;
  }

  get appliedSeq(): number {
    return this.#applierStatus.appliedSeq;
  }

  /**
   * Appends durably or throws: 503 LOG_FULL when the unapplied backlog would pass its limit,
   * 503 LOG_UNAVAILABLE when nothing was appended (the log failed or was too slow), 503
   * APPEND_UNCONFIRMED when a COMMIT was under way and its outcome is unknown. Never resolves
   * before the append is on disk (I1).
   */
  async append(request: AppendRequest): Promise<AppendOutcome> {
    const committer = this.#committer;
    if (!committer || this.#stopping) throw new HeraldError('SHUTTING_DOWN', { retryAfterSeconds: RETRY_AFTER_SECONDS });
    const records = request.payloads.length;
    // Reserve room synchronously, so concurrent requests cannot all slip under the limit.
    if (this.#headSeq - this.appliedSeq + this.#reserved + records > this.#deps.config.logMaxPendingRecords) {
      throw new HeraldError('LOG_FULL', { retryAfterSeconds: 5 });
    }
    this.#reserved += records;
    try {
      const outcome = await committer.append(request);
      this.#logError = null;
      if (outcome.kind === 'appended') {
        this.#headSeq = Math.max(this.#headSeq, outcome.lastSeq);
        this.#wakeApplier();
      }
      return outcome;
    } catch (error) {
      const e = error instanceof AppendFailedError ? error : new AppendFailedError('not_accepted', coerceError(error).message);
      const cause = e.cause instanceof Error ? e.cause.message : e.message;
      this.#logError = cause;
      this.#deps.logger.error({ cell: this.cell.id, err: cause, outcome: e.failure }, 'ingest log append failed');
      throw new HeraldError(e.failure === 'unconfirmed' ? 'APPEND_UNCONFIRMED' : 'LOG_UNAVAILABLE', {
        retryAfterSeconds: RETRY_AFTER_SECONDS,
        cause: e,
      });
    } finally {
      this.#reserved -= records;
    }
  }

  /** One wake message per event-loop turn, however many appends completed in it. */
  #wakeApplier(): void {
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    setImmediate(() => {
      this.#wakeQueued = false;
      this.#applier?.postMessage({ type: 'wake' });
    });
  }

  /** Resolves true once `seq` is applied to the store, false after `timeoutMs`. */
  waitForApplied(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.appliedSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** The store for reads; throws STORE_UNAVAILABLE (503) while it cannot be opened or answer. */
  async store(): Promise<CellStore> {
    if (this.#applierStatus.state === 'store_unavailable') {
      throw new HeraldError('STORE_UNAVAILABLE', { retryAfterSeconds: RETRY_AFTER_SECONDS });
    }
    this.#readStore ??= openStore(this.cell.storeUrl, { dataDir: this.#deps.config.dataDir, create: true }).then((store) => {
      // Long targeting reads on SQLite (which blocks the calling thread) run on a thread of their own.
      if (store instanceof SqliteCellStore) store.useQueryRunner(new ThreadedSqliteReader(store.file));
      return store;
    });
    try {
      return await this.#readStore;
    } catch (error) {
      this.#readStore = undefined;
      throw new HeraldError('STORE_UNAVAILABLE', { retryAfterSeconds: RETRY_AFTER_SECONDS, cause: error });
    }
  }

  /** Runs a read; an outage becomes 503 STORE_UNAVAILABLE and the connection is reopened next time. */
  async read<T>(fn: (store: CellStore) => Promise<T>): Promise<T> {
    const store = await this.store();
    try {
      return await fn(store);
    } catch (error) {
      if (store.isUnavailableError(error)) {
        this.#readStore = undefined;
        void store.close().catch(() => undefined);
        throw new HeraldError('STORE_UNAVAILABLE', { retryAfterSeconds: RETRY_AFTER_SECONDS, cause: error });
      }
      throw error;
    }
  }

  status(): CellStatus {
    const s = this.#applierStatus;
    return {
      cellId: this.cell.id,
      log: { ok: this.#logError === null, headSeq: this.#headSeq, lastError: this.#logError },
      store: { ok: s.state === 'running', appliedSeq: s.appliedSeq, state: s.state, lastError: s.lastError },
      lag: Math.max(0, this.#headSeq - s.appliedSeq),
    };
  }

  /** Stops taking appends, commits what is queued, stops the applier and closes connections. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#committer?.drain();
    await Promise.all([this.#applier, this.#orchestrator, this.#delivery].flatMap((worker) => (worker ? [stopWorker(worker)] : [])));
    await this.#appender?.close();
    const store = await this.#readStore?.catch(() => undefined);
    await store?.close();
    for (const waiter of this.#waiters) waiter.resolve(false);
    this.#waiters.clear();
  }
}

/** Asks a worker to stop, and terminates it if it has not within 15 s. */
function stopWorker(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    worker.once('exit', () => resolve());
    worker.postMessage({ type: 'stop' });
    setTimeout(() => void worker.terminate(), 15_000).unref();
  });
}
