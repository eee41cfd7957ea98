import fs from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import { systemClock } from '../core/clock.ts';
import { openLog, openStore } from '../storage/backends.ts';
import { ApplierLoop } from './applier-loop.ts';

/** The applier of one cell, on a thread of its own so its transactions never stall the API. */
interface Data {
  cellId: string;
  storeUrl: string;
  logUrl: string;
  dataDir: string;
  maxAttempts: number;
  batchSize: number;
  retentionMs: number;
  logLevel: string;
}

const data = workerData as Data;

// Acknowledging writes comes first: the applier yields the CPU to the API thread when both want it
// and catches up when it is free (Linux: the thread's nice value; best effort elsewhere).
try {
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid)) os.setPriority(tid, 10);
} catch {
  // not Linux, or not allowed: run at normal priority
}
const port = parentPort!;
const logger = pino({ level: data.logLevel, base: { cell: data.cellId, thread: 'applier' } });
const controller = new AbortController();

const loop = new ApplierLoop({
  openStore: () => openStore(data.storeUrl, { dataDir: data.dataDir, create: true }),
  openLog: () => openLog(data.logUrl, { dataDir: data.dataDir, create: true }),
  clock: systemClock,
  logger,
  maxAttempts: data.maxAttempts,
  batchSize: data.batchSize,
  retentionMs: data.retentionMs,
  onStatus: (status) => port.postMessage({ type: 'status', status }),
});

port.on('message', (message: { type: 'wake' } | { type: 'stop' }) => {
  if (message.type === 'wake') loop.wake();
  else controller.abort();
});

loop.run(controller.signal).then(
  () => port.close(),
  (error: unknown) => {
    logger.fatal({ err: String(error) }, 'applier loop crashed');
    process.exitCode = 1;
    port.close();
  },
);
