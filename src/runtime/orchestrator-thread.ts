import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import type { HeraldConfig } from '../config/config.ts';
import { systemClock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import { backoffMs, sleep } from '../core/retry.ts';
import { CampaignRunner, type CampaignLookups } from '../orchestration/campaign-runner.ts';
import { JourneyRunner } from '../orchestration/journey-runner.ts';
import { openStore } from '../storage/backends.ts';
import type { CellStore } from '../storage/cell-store.ts';
import type { Segment } from '../targeting/segment-model.ts';
import { openControlPlane } from './open-control-plane.ts';

/**
 * The orchestrator of one cell (issue 5): launches due campaigns and fans them out into the outbox,
 * one transaction per batch, and runs journeys (triggers from applied events, durable timers). Its own thread, so a fan-out never delays ingestion acknowledgements
 * (the edge) or provider answers (the delivery thread); its own store connection.
 */
interface Data {
  cellId: string;
  storeUrl: string;
  config: HeraldConfig;
}

export interface OrchestratorStatus {
  state: 'starting' | 'running' | 'store_unavailable';
  lastError: string | null;
  heartbeatAt: number;
}

const data = workerData as Data;
const port = parentPort!;
const logger = pino({ level: data.config.logLevel, base: { cell: data.cellId, thread: 'orchestrator' } });
const controller = new AbortController();
/** Looks again at least this often: scheduled times and settled messages are found by polling. */
const POLL_MS = 1_000;
let wake: (() => void) | undefined;
/** A wake that came while a tick ran: look again at once instead of idling. */
let woken = false;

port.on('message', (message: { type: 'wake' } | { type: 'stop' }) => {
  woken = true;
  if (message.type === 'wake') wake?.();
  else {
    controller.abort();
    wake?.();
  }
});

function report(state: OrchestratorStatus['state'], lastError: string | null): void {
  port.postMessage({ type: 'orchestrator', status: { state, lastError, heartbeatAt: Date.now() } satisfies OrchestratorStatus });
}

function idle(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      wake = undefined;
      resolve();
    }
    wake = done;
  });
}

async function main(): Promise<void> {
  const control = await openControlPlane(data.config, { clock: systemClock, logger }, { create: false });
  control.watch();
  const lookups: CampaignLookups = {
    template: async (projectId, ref) => {
      const t = await control.config.getTemplate(projectId, ref);
      return t ? { id: t.id, channel: t.channel, variants: t.variants } : null;
    },
    savedSegments: async (projectId) => {
      const map = new Map<string, Segment>();
      for (const s of await control.config.listSegments(projectId)) {
        map.set(s.id, s.definition as Segment);
        map.set(s.name, s.definition as Segment);
      }
      return map;
    },
    audienceIds: (projectId) => control.audiences.audienceIdsByName(projectId),
  };
  let store: CellStore | undefined;
  let failures = 0;
  let state: OrchestratorStatus['state'] = 'starting';
  const heartbeat = setInterval(() => report(state, null), 1000);
  try {
    while (!controller.signal.aborted) {
      try {
        store ??= await openStore(data.storeUrl, { dataDir: data.config.dataDir, create: true });
        const onQueued = () => port.postMessage({ type: 'queued' });
        const campaigns = new CampaignRunner({ store, lookups, clock: systemClock, logger, onQueued });
        const journeys = new JourneyRunner({ store, lookups, clock: systemClock, logger, onQueued });
        state = 'running';
        failures = 0;
        while (!controller.signal.aborted) {
          woken = false;
          // Journeys first: a trigger's latency is what users notice; a campaign batch can wait a tick.
          const moreJourneys = await journeys.tick();
          const moreCampaigns = await campaigns.tick();
          if (!moreJourneys && !moreCampaigns && !woken) await idle(POLL_MS);
        }
      } catch (error) {
        failures++;
        const message = coerceError(error).message;
        if (failures === 1) logger.error({ err: message }, 'orchestrator: store unavailable or failing; backing off');
        state = 'store_unavailable';
        report(state, message);
        await store?.close().catch(() => undefined);
        store = undefined;
        await sleep(backoffMs({ initialMs: 200, maxMs: 5_000, multiplier: 2 }, failures), controller.signal);
      }
    }
  } finally {
    clearInterval(heartbeat);
    await store?.close().catch(() => undefined);
    await control.close().catch(() => undefined);
  }
}

main().then(
  () => port.close(),
  (error: unknown) => {
    logger.fatal({ err: coerceError(error).message }, 'orchestrator thread crashed');
    process.exitCode = 1;
    port.close();
  },
);
