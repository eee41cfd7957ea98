import type { Clock } from '../core/clock.ts';
import type { AppendOutcome, AppendRequest, LogAppender } from './ingest-log.ts';
import { maybeCommitted } from './ingest-log.ts';

/** Why an append did not succeed, as far as the caller may tell its client. */
export type AppendFailure =
  /** Nothing of the request was appended: safe to say so, and to retry. */
  | 'not_accepted'
  /** The commit started but its outcome is unknown (lost connection, dead writer, too slow). */
  | 'unconfirmed';

export class AppendFailedError extends Error {
  override name = 'AppendFailedError';
  constructor(
    readonly failure: AppendFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface Waiting {
  request: AppendRequest;
  deadlineMs: number;
  state: 'queued' | 'sent' | 'done';
  resolve: (outcome: AppendOutcome) => void;
  reject: (error: AppendFailedError) => void;
  timer: NodeJS.Timeout;
}

export interface GroupCommitOptions {
  /** Longest a request may wait in the queue and for its transaction to be ready to commit. */
  timeoutMs: number;
  /** Extra time granted to a COMMIT already under way before answering 'unconfirmed'. */
  commitGraceMs: number;
  maxRequestsPerCommit?: number;
}

/**
 * Group commit (I1 at speed): every request that arrives while the log is busy, or within the
 * same event-loop turn, joins ONE durable append; one append is in flight at a time and the next
 * starts the moment it returns. Deadlines keep the promise the API makes when it answers 503
 * "nothing accepted" (I9): a request that times out while queued is withdrawn, and a transaction
 * not ready to commit before the earliest deadline of its requests is rolled back by the log.
 * Only a COMMIT already under way can end 'unconfirmed'.
 */
export class GroupCommitter {
  #pending: Waiting[] = [];
  #inFlight: Promise<void> | undefined;
  #scheduled = false;
  readonly #max: number;

  constructor(
    private readonly appender: LogAppender,
    private readonly clock: Clock,
    private readonly options: GroupCommitOptions,
  ) {
    this.#max = options.maxRequestsPerCommit ?? 10_000;
  }

  get queued(): number {
    return this.#pending.length;
  }

  append(request: AppendRequest): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      const deadlineMs = Date.now() + this.options.timeoutMs;
      const waiting: Waiting = {
        request,
        deadlineMs,
        state: 'queued',
        resolve,
        reject,
        timer: setTimeout(() => this.#onTimeout(waiting), this.options.timeoutMs),
      };
      this.#pending.push(waiting);
      this.#schedule();
    });
  }

  /** Resolves once everything queued so far has been committed or failed. */
  async drain(): Promise<void> {
    while (this.#inFlight || this.#pending.length > 0) {
      if (!this.#inFlight) this.#flush();
      await this.#inFlight;
    }
  }

  #onTimeout(w: Waiting): void {
    if (w.state === 'queued') this.#withdraw(w);
    else if (w.state === 'sent') w.timer = setTimeout(() => this.#onGraceOver(w), this.options.commitGraceMs);
  }

  #onGraceOver(w: Waiting): void {
    if (w.state === 'queued') this.#withdraw(w);
    else this.#settle(w, new AppendFailedError('unconfirmed', 'the ingest log did not confirm the commit in time'));
  }

  #withdraw(w: Waiting): void {
    this.#pending = this.#pending.filter((p) => p !== w);
    this.#settle(w, new AppendFailedError('not_accepted', 'the ingest log did not take the request in time'));
  }

  #settle(w: Waiting, result: AppendOutcome | AppendFailedError): void {
    if (w.state === 'done') return;
    w.state = 'done';
    clearTimeout(w.timer);
    if (result instanceof AppendFailedError) w.reject(result);
    else w.resolve(result);
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#inFlight || this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, this.#max);
    for (const w of batch) w.state = 'sent';
    const deadlineMs = Math.min(...batch.map((w) => w.deadlineMs));
    this.#inFlight = this.appender
      .append(
        batch.map((w) => w.request),
        this.clock.now(),
        deadlineMs,
      )
      .then(
        (outcomes) => batch.forEach((w, i) => this.#settle(w, outcomes[i]!)),
        (error: unknown) => this.#onBatchError(batch, error),
      )
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
  }

  #onBatchError(batch: Waiting[], error: unknown): void {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'APPEND_DEADLINE') {
      // Rolled back: requests still within their deadline go again, at the front of the queue.
      const now = Date.now();
      const retry = batch.filter((w) => w.state === 'sent' && w.deadlineMs > now);
      for (const w of retry) w.state = 'queued';
      this.#pending.unshift(...retry);
      for (const w of batch) {
        if (w.state === 'sent') this.#settle(w, new AppendFailedError('not_accepted', 'the ingest log was too slow', { cause: error }));
      }
      return;
    }
    const failure: AppendFailure = maybeCommitted(error) ? 'unconfirmed' : 'not_accepted';
    const message = error instanceof Error ? error.message : String(error);
    for (const w of batch) this.#settle(w, new AppendFailedError(failure, message, { cause: error }));
  }
}
