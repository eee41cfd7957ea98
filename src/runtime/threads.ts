import { Worker } from 'node:worker_threads';

/** Running from the TypeScript sources (tsx), or from the JavaScript build (dist/). */
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * Starts a worker thread running the module `entry` ('applier-thread', 'log-writer-thread') with
 * `data`. From the build the thread loads plain JavaScript; from the sources it registers tsx first.
 */
export function startThread(
  entry: string,
  data: Record<string, unknown>,
  name: string,
  options: { maxHeapMb?: number } = {},
): Worker {
  // A heap ceiling makes V8 collect sooner instead of growing toward the process-wide default.
  const resourceLimits = options.maxHeapMb ? { maxOldGenerationSizeMb: options.maxHeapMb } : undefined;
  if (!FROM_SOURCES) return new Worker(new URL(`./${entry}.js`, import.meta.url), { workerData: data, name, resourceLimits });
  const boot = new URL('./thread-boot.mjs', import.meta.url);
  const entryUrl = new URL(`./${entry}.ts`, import.meta.url).href;
  return new Worker(boot, { workerData: { ...data, entry: entryUrl }, name, resourceLimits });
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
