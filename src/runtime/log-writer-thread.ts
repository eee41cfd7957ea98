import { parentPort, workerData } from 'node:worker_threads';
import type { AppendRequest, IngestLog } from '../ingest/ingest-log.ts';
import { openLog } from '../storage/backends.ts';
import { toWire } from './threads.ts';

/**
 * The log writer thread of one cell whose log blocks (SQLite): it owns the log's write
 * connection, so the fsync of each group commit never stalls the event loop that answers the API.
 */
interface Data {
  logUrl: string;
  dataDir: string;
}

type Request = { id: number; op: 'append'; requests: AppendRequest[]; nowMs: number; deadlineMs?: number } | { id: number; op: 'head' };

const { logUrl, dataDir } = workerData as Data;
const port = parentPort!;
let log: IngestLog | undefined;

async function handle(message: Request): Promise<unknown> {
  log ??= await openLog(logUrl, { dataDir, create: true });
  if (message.op === 'head') return log.headSeq();
  return log.append(message.requests, message.nowMs, message.deadlineMs);
}

port.on('message', (message: Request | { op: 'close' }) => {
  if (message.op === 'close') {
    void log?.close().finally(() => port.close());
    return;
  }
  handle(message).then(
    (result) => port.postMessage({ id: message.id, ok: true, result }),
    (error: unknown) => {
      // A log that failed to open or write is reopened on the next request (not after a deadline).
      if ((error as { code?: unknown }).code !== 'APPEND_DEADLINE') {
        void log?.close().catch(() => undefined);
        log = undefined;
      }
      port.postMessage({ id: message.id, ok: false, error: toWire(error) });
    },
  );
});
