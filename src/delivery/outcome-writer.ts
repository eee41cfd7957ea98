import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { backoffMs } from '../core/retry.ts';
import type { MessageUpdate, OutboxStore } from '../storage/outbox-port.ts';

export interface OutcomeWriterOptions {
  store: Pick<OutboxStore, 'settleMessages'>;
  logger: Logger;
  /** Outcomes written in one transaction, at most. */
  batch: number;
  /** How long an outcome may wait for others to share its transaction (the crash window grows by this much). */
  delayMs: number;
  /** Called with the ids whose outcomes are written (or whose lease was lost meanwhile). */
  onWritten: (ids: readonly string[]) => void;
}

/**
 * Writes a dispatcher's outcomes in shared transactions (each one is an fsync on SQLite): a full
 * batch at once, a partial one `delayMs` after its first outcome, one transaction at a time. When
 * the store fails, nothing is dropped: the outcomes go back in front and are retried with backoff.
 */
export class OutcomeWriter {
  readonly #o: OutcomeWriterOptions;
  readonly #pending: MessageUpdate[] = [];
  /** Messages claimed again while their outcome was waiting or being written: the latest claim's attempt. */
  readonly #retargeted = new Map<string, number>();
  #inFlight = 0;
  /** The transaction writing outcomes now; what arrives meanwhile waits for the next. */
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(options: OutcomeWriterOptions) {
    this.#o = options;
  }

  /** Outcomes not yet written (including those of the transaction under way). */
  get pending(): number {
    return this.#pending.length + this.#inFlight;
  }

  /**
   * The message was claimed again (its lease lapsed while its outcome waited here, and this
   * dispatcher took it back): the waiting outcome now belongs to the new claim, so it is written
   * instead of being refused as a lost lease and the message sent again (I4).
   */
  retarget(id: string, claimedAttempt: number): void {
    for (const u of this.#pending) if (u.id === id && u.claimedAttempt < claimedAttempt) u.claimedAttempt = claimedAttempt;
    // An outcome in the batch being written now may be refused under its old claim: it is written again.
    this.#retargeted.set(id, Math.max(claimedAttempt, this.#retargeted.get(id) ?? 0));
  }

  add(update: MessageUpdate): void {
    this.#pending.push(update);
    if (this.#writing || this.#failures > 0) return; // the running write, or the retry, picks it up
    if (this.#pending.length < this.#o.batch) this.#timer ??= setTimeout(() => void this.#background(), this.#o.delayMs);
    else void this.#background();
  }

  /** Writes every outcome waiting (after the transaction under way, if any). Throws if the store does. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing) await this.#writing.catch(() => undefined);
    if (this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, this.#o.batch);
    this.#inFlight = batch.length;
    const writing = this.#o.store.settleMessages(batch).then(
      ({ lostLeases }) => {
        // Outcomes retargeted while this batch was written may have been refused under their old
        // claim: write them again under the new one (one already applied is refused then, harmlessly).
        const again = batch.filter((u) => (this.#retargeted.get(u.id) ?? 0) > u.claimedAttempt);
        const retry = new Set(again.map((u) => u.id));
        for (const u of batch) if (!retry.has(u.id)) this.#retargeted.delete(u.id);
        this.#o.onWritten(batch.filter((u) => !retry.has(u.id)).map((u) => u.id));
        for (const u of again) this.#pending.push({ ...u, claimedAttempt: this.#retargeted.get(u.id)! });
        if (lostLeases > again.length) this.#o.logger.warn({ lostLeases }, 'outcomes for messages whose lease was lost were not recorded');
      },
      (error: unknown) => {
        this.#inFlight = 0;
        this.#pending.unshift(...batch);
        throw error;
      },
    );
    this.#writing = writing;
    try {
      await writing;
    } finally {
      this.#writing = undefined;
      this.#inFlight = 0;
    }
    // A full batch is written at once; a partial one waits `delayMs` for company.
    if (this.#pending.length >= this.#o.batch) await this.flush();
    else if (this.#pending.length > 0) this.#timer ??= setTimeout(() => void this.#background(), this.#o.delayMs);
  }

  /** Writes everything, including what arrives while writing; for a clean stop. */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#writing) await this.flush();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #background(): Promise<void> {
    this.#timer = undefined;
    try {
      await this.flush();
      this.#failures = 0;
    } catch (error) {
      this.#failures++;
      this.#o.logger.error({ err: coerceError(error).message, pending: this.#pending.length }, 'writing delivery outcomes failed; retrying');
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.#background(), backoffMs({ initialMs: 100, maxMs: 5_000, multiplier: 2 }, this.#failures));
    }
  }
}
