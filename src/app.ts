import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { HeraldConfig } from './config/config.ts';
import type { ControlPlane, CreatedProject } from './control/control-plane.ts';
import { openControlPlane } from './runtime/open-control-plane.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { ProjectRateLimiter } from './api/auth.ts';
import { buildServer } from './api/server.ts';
import { CellRuntimes } from './runtime/cell-runtimes.ts';
import { HERALD_VERSION } from './version.ts';

export interface HeraldApp {
  readonly url: string;
  readonly config: HeraldConfig;
  readonly control: ControlPlane;
  readonly cells: CellRuntimes;
  readonly server: FastifyInstance;
  /** The demo project, when this start created it (first start on an empty data dir). */
  readonly demo: CreatedProject | undefined;
  stop(): Promise<void>;
}

export interface AppOptions {
  clock?: Clock;
  /** Create the `demo` project when there is no project yet (herald start does). */
  createDemo?: boolean;
}

/** The composition root: wires the control plane, the cells and the HTTP edge, and starts them. */
export async function createApp(config: HeraldConfig, options: AppOptions = {}): Promise<HeraldApp> {
  const clock = options.clock ?? systemClock;
  const logger = pino({ level: config.logLevel, redact: ['req.headers.authorization', 'headers.authorization'] });
  const control = await openControlPlane(config, { clock, logger: logger });
  let cells: CellRuntimes | undefined;
  try {
    await control.ensureDefaultCell();
    cells = new CellRuntimes(control, { config, clock, logger: logger });
    await cells.start();
    const server = await buildServer(
      { control, cells, limiter: new ProjectRateLimiter(clock, config.rateLimitPerSecond), clock, version: HERALD_VERSION },
      { logger },
    );
    const address = await server.listen({ host: config.host, port: config.port });
    // Only once listening: a start that fails (port taken) must not create keys nobody was shown.
    const demo = options.createDemo && control.projects().length === 0 ? await control.createProject('demo') : undefined;
    control.watch();
    const url = address;
    const running = cells;
    let stopped: Promise<void> | undefined;
    return {
      url,
      config,
      control,
      cells,
      server,
      demo,
      stop() {
        stopped ??= (async () => {
          await server.close();
          await running.stop();
          await control.close();
        })();
        return stopped;
      },
    };
  } catch (error) {
    await cells?.stop().catch(() => undefined);
    await control.close().catch(() => undefined);
    throw error;
  }
}
