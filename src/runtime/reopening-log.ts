import type { AppendOutcome, AppendRequest, IngestLog, LogAppender } from '../ingest/ingest-log.ts';

/**
 * A log opened on first use and reopened after it failed, so a cell whose log was down at start
 * (or went down later) starts taking writes again by itself once it is back.
 */
export class ReopeningLog implements LogAppender {
  #log: Promise<IngestLog> | undefined;
  #closed = false;

  constructor(private readonly open: () => Promise<IngestLog>) {}

  append(requests: readonly AppendRequest[], nowMs: number): Promise<AppendOutcome[]> {
    return this.#use((log) => log.append(requests, nowMs));
  }

  headSeq(): Promise<number> {
    return this.#use((log) => log.headSeq());
  }

  async close(): Promise<void> {
    this.#closed = true;
    const log = await this.#log?.catch(() => undefined);
    this.#log = undefined;
    await log?.close();
  }

  async #use<T>(fn: (log: IngestLog) => Promise<T>): Promise<T> {
    if (this.#closed) throw Object.assign(new Error('log is closed'), { code: 'LOG_CLOSED' });
    this.#log ??= this.open();
    let log: IngestLog;
    try {
      log = await this.#log;
    } catch (error) {
      this.#log = undefined;
      throw error;
    }
    try {
      return await fn(log);
    } catch (error) {
      if (log.isUnavailableError(error)) {
        this.#log = undefined;
        void log.close().catch(() => undefined);
      }
      throw error;
    }
  }
}
