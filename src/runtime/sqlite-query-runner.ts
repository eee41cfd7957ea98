import type { Worker } from 'node:worker_threads';
import type { ReadQueryRunner } from '../storage/query-runner.ts';
import type { SqlValue } from '../storage/sql.ts';
import { fromWire, startThread, type WireError } from './threads.ts';

type Row = Record<string, unknown>;

/** A ReadQueryRunner whose queries run on a thread of their own (sqlite-query-thread.ts), started on first use. */
export class ThreadedSqliteReader implements ReadQueryRunner {
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly file: string) {}

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = startThread('sqlite-query-thread', { file: this.file }, 'herald-sqlite-query', { maxHeapMb: 256 });
    worker.unref();
    worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: WireError }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(fromWire(m.error!));
    });
    const fail = (error: Error) => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the SQLite query thread exited (${code})`)));
    this.#worker = worker;
    return worker;
  }

  #call<T>(message: Record<string, unknown>): Promise<T> {
    const worker = this.#thread();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...message, id });
    }).finally(() => {
      if (this.#pending.size === 0) this.#worker?.unref();
    });
  }

  all(text: string, params: readonly SqlValue[]): Promise<Row[]> {
    return this.#call<Row[]>({ op: 'all', text, params });
  }

  async *batches(text: string, params: readonly SqlValue[], size: number): AsyncIterable<Row[]> {
    const cursor = await this.#call<number>({ op: 'open', text, params });
    let done = false;
    try {
      while (!done) {
        const rows = await this.#call<Row[]>({ op: 'next', cursor, size });
        done = rows.length < size;
        if (rows.length > 0) yield rows;
      }
    } finally {
      if (!done) await this.#call({ op: 'release', cursor }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ op: 'close' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    await worker.terminate().catch(() => undefined);
  }
}
