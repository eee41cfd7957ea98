import type { Clock } from '../core/clock.ts';
import type { AppendOutcome, AppendRequest, LogAppender } from './ingest-log.ts';

interface Waiting {
  request: AppendRequest;
  resolve: (outcome: AppendOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit (I1 at speed): every request that arrives while the log is busy, or within the
 * same event-loop turn, joins ONE durable append. One append is in flight at a time; the next
 * starts the moment it returns, with everything that queued meanwhile.
 */
export class GroupCommitter {
  #pending: Waiting[] = [];
  #inFlight: Promise<void> | undefined;
  #scheduled = false;

  constructor(
    private readonly appender: LogAppender,
    private readonly clock: Clock,
    private readonly maxRequestsPerCommit = 10_000,
  ) {}

  get queued(): number {
    return this.#pending.length;
  }

  append(request: AppendRequest): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ request, resolve, reject });
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
    const batch = this.#pending.splice(0, this.maxRequestsPerCommit);
    this.#inFlight = this.appender
      .append(
        batch.map((w) => w.request),
        this.clock.now(),
      )
      .then(
        (outcomes) => batch.forEach((w, i) => w.resolve(outcomes[i]!)),
        (error: unknown) => batch.forEach((w) => w.reject(error)),
      )
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
  }
}
