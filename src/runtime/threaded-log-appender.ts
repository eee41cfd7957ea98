import type { Worker } from 'node:worker_threads';
import type { AppendOutcome, AppendRequest, LogAppender } from '../ingest/ingest-log.ts';
import type { Logger } from '../core/logger.ts';
import { fromWire, startThread, type WireError } from './threads.ts';

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: WireError };

/** The main thread's side of a log writer thread: the same append port, answered across threads. */
export class ThreadedLogAppender implements LogAppender {
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #closed = false;

  constructor(
    private readonly data: { logUrl: string; dataDir: string },
    private readonly name: string,
    private readonly logger: Logger,
  ) {}

  append(requests: readonly AppendRequest[], nowMs: number, deadlineMs?: number): Promise<AppendOutcome[]> {
    return this.#call({ op: 'append', requests, nowMs, deadlineMs }) as Promise<AppendOutcome[]>;
  }

  headSeq(): Promise<number> {
    return this.#call({ op: 'head' }) as Promise<number>;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.postMessage({ op: 'close' });
      setTimeout(() => void worker.terminate(), 5000).unref();
    });
  }

  #call(message: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) return Promise.reject(Object.assign(new Error('log writer is closed'), { code: 'LOG_CLOSED' }));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      this.#thread().postMessage({ ...message, id });
    });
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    // The writer holds one group commit at a time (bounded by the API's request sizes).
    const worker = startThread('log-writer-thread', this.data, this.name, { maxHeapMb: 256 });
    worker.on('message', (reply: Reply) => {
      const call = this.#calls.get(reply.id);
      if (!call) return;
      this.#calls.delete(reply.id);
      if (reply.ok) call.resolve(reply.result);
      else call.reject(fromWire(reply.error));
    });
    worker.on('error', (error) => this.logger.error({ err: error.message }, 'log writer thread failed'));
    worker.on('exit', () => {
      // Whatever was in flight is unacknowledged: fail it (the API answers 503), restart on next use.
      this.#worker = undefined;
      for (const [id, call] of this.#calls) {
        this.#calls.delete(id);
        // It may have died after COMMIT and before answering: the outcome is unknown.
        call.reject(Object.assign(new Error('log writer thread exited'), { code: 'LOG_THREAD_EXITED', maybeCommitted: true }));
      }
    });
    this.#worker = worker;
    return worker;
  }
}
