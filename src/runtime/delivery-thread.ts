import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import type { HeraldConfig } from '../config/config.ts';
import { systemClock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import { backoffMs, sleep } from '../core/retry.ts';
import { ConfiguredProviders } from '../delivery/configured-providers.ts';
import { Dispatcher, type DispatcherStats } from '../delivery/dispatcher.ts';
import { openStore } from '../storage/backends.ts';
import type { CellStore } from '../storage/cell-store.ts';
import { openControlPlane } from './open-control-plane.ts';
import { unsubscribeToken } from '../delivery/unsubscribe.ts';
import { renderAtDelivery } from '../delivery/render-at-delivery.ts';
import { TemplateEngine } from '../delivery/templates/template-engine.ts';

/** The delivery worker of one cell: claims the cell's outbox and talks to the providers. */
interface Data {
  cellId: string;
  storeUrl: string;
  config: HeraldConfig;
  sandboxEndpoints: Record<string, string>;
  publicUrl: string;
  /** Hex key that signs unsubscribe links. */
  unsubscribeKey: string;
}

export interface DeliveryStatus {
  state: 'starting' | 'running' | 'store_unavailable';
  lastError: string | null;
  stats: DispatcherStats;
  heartbeatAt: number;
}

const data = workerData as Data;
const port = parentPort!;
const logger = pino({ level: data.config.logLevel, base: { cell: data.cellId, thread: 'delivery' } });
const controller = new AbortController();
let dispatcher: Dispatcher | undefined;

port.on('message', (message: { type: 'wake' } | { type: 'stop' }) => {
  if (message.type === 'wake') dispatcher?.wake();
  else controller.abort();
});

function report(state: DeliveryStatus['state'], lastError: string | null): void {
  const stats = dispatcher?.stats ?? { claimed: 0, sent: 0, failed: 0, retried: 0, expired: 0, inFlight: 0, held: 0 };
  port.postMessage({ type: 'delivery', status: { state, lastError, stats: { ...stats }, heartbeatAt: Date.now() } satisfies DeliveryStatus });
}

async function main(): Promise<void> {
  const control = await openControlPlane(data.config, { clock: systemClock, logger }, { create: false });
  control.watch();
  const providers = new ConfiguredProviders(
    control,
    { clock: systemClock, logger, sandbox: data.sandboxEndpoints, allowPrivateTargets: false },
    logger,
  );
  control.onChange(() => void providers.prune());
  const key = Buffer.from(data.unsubscribeKey, 'hex');
  const engine = new TemplateEngine();
  const owner = `${os.hostname()}:${process.pid}:${data.cellId}:${Math.random().toString(36).slice(2, 8)}`;
  let failures = 0;
  let store: CellStore | undefined;
  const heartbeat = setInterval(() => report(dispatcher ? 'running' : 'starting', null), 1000);
  try {
    while (!controller.signal.aborted) {
      try {
        store ??= await openStore(data.storeUrl, { dataDir: data.config.dataDir, create: true });
        const openedStore = store;
        dispatcher ??= new Dispatcher({
          store,
          resolver: providers,
          clock: systemClock,
          logger,
          owner,
          leaseMs: data.config.deliveryLeaseMs,
          prepare: (messages) => renderAtDelivery(messages, openedStore, engine),
          unsubscribeUrl: (m) => {
            const token = unsubscribeToken(key, { projectId: m.projectId, customId: m.customId, address: m.recipient });
            return data.publicUrl.startsWith('https://') ? `${data.publicUrl}/v1/unsubscribe/${token}` : undefined;
          },
        });
        failures = 0;
        await dispatcher.run(controller.signal);
      } catch (error) {
        failures++;
        const message = coerceError(error).message;
        if (failures === 1) logger.error({ err: message }, 'delivery: store unavailable; backing off');
        report('store_unavailable', message);
        dispatcher = undefined;
        await store?.close().catch(() => undefined);
        store = undefined;
        await sleep(backoffMs({ initialMs: 200, maxMs: 5_000, multiplier: 2 }, failures), controller.signal);
      }
    }
  } finally {
    clearInterval(heartbeat);
    await providers.close();
    await store?.close().catch(() => undefined);
    await control.close().catch(() => undefined);
  }
}

main().then(
  () => port.close(),
  (error: unknown) => {
    logger.fatal({ err: coerceError(error).message }, 'delivery thread crashed');
    process.exitCode = 1;
    port.close();
  },
);

