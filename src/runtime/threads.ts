import { Worker } from 'node:worker_threads';

/** Starts a worker thread running `entry` (a module URL next to this file) with `data`. */
export function startThread(entry: string, data: Record<string, unknown>, name: string): Worker {
  const boot = new URL('./thread-boot.mjs', import.meta.url);
  const entryUrl = new URL(entry, import.meta.url).href;
  return new Worker(boot, { workerData: { ...data, entry: entryUrl }, name });
}

/** Errors cross threads as plain data; this brings back the fields classification needs. */
export interface WireError {
  message: string;
  code?: string | undefined;
  name?: string | undefined;
  maybeCommitted?: boolean | undefined;
}

export function toWire(error: unknown): WireError {
  const e = error as { message?: unknown; code?: unknown; name?: unknown; maybeCommitted?: unknown } | null;
  return {
    message: typeof e?.message === 'string' ? e.message : String(error),
    code: typeof e?.code === 'string' ? e.code : undefined,
    name: typeof e?.name === 'string' ? e.name : undefined,
    maybeCommitted: e?.maybeCommitted === true,
  };
}

export function fromWire(wire: WireError): Error {
  return Object.assign(new Error(wire.message), { code: wire.code, name: wire.name ?? 'Error', maybeCommitted: wire.maybeCommitted });
}
