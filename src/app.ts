import path from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { HeraldConfig } from './config/config.ts';
import type { ControlPlane, CreatedProject } from './control/control-plane.ts';
import { openControlPlane } from './runtime/open-control-plane.ts';
import { loadMasterKey } from './runtime/master-key.ts';
import { systemClock, type Clock } from './core/clock.ts';
import type { Logger } from './core/logger.ts';
import { ProjectRateLimiter } from './api/auth.ts';
import { buildServer } from './api/server.ts';
import { CellRuntimes } from './runtime/cell-runtimes.ts';
import { unsubscribeKey } from './delivery/unsubscribe.ts';
import { providerKind } from './delivery/providers/registry.ts';
import { SANDBOX_CREDENTIALS, SANDBOX_LIMITS } from './sandbox/demo-credentials.ts';
import { startSandbox, type SandboxHandle } from './sandbox/sandbox.ts';
import { connectSandbox } from './sandbox/sandbox-server.ts';
import { HERALD_VERSION } from './version.ts';

export interface HeraldApp {
  readonly url: string;
  readonly config: HeraldConfig;
  readonly control: ControlPlane;
  readonly cells: CellRuntimes;
  readonly server: FastifyInstance;
  /** The provider sandbox this Herald delivers to when a project uses it (absent with --sandbox off). */
  readonly sandbox: SandboxHandle | undefined;
  /** The demo project, when this start created it (first start on an empty data dir). */
  readonly demo: CreatedProject | undefined;
  stop(): Promise<void>;
}

export interface AppOptions {
  clock?: Clock;
  /** Create the `demo` project when there is no project yet (herald start does). */
  createDemo?: boolean;
}

async function openSandbox(config: HeraldConfig, clock: Clock, logger: Logger): Promise<SandboxHandle | undefined> {
  if (config.sandbox === 'off') return undefined;
  if (config.sandbox !== 'auto') return connectSandbox(config.sandbox);
  const options = { clock, logger, basePort: config.sandboxPort, dir: path.join(config.dataDir, 'sandbox') };
  try {
    return await startSandbox(options);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE' || config.sandboxPort === 0) throw error;
    logger.info({ basePort: config.sandboxPort }, 'sandbox ports are taken; the sandbox uses free ports instead');
    return startSandbox({ ...options, basePort: 0 });
  }
}

/**
 * Wires the `demo` project to the sandbox for every provider kind it has not configured itself,
 * so that `npm start` delivers somewhere visible with no credentials at all. Sandbox wiring is
 * renewed at every start (the sandbox's ports and keys may have changed); real providers the user
 * configured are never touched.
 */
async function wireDemo(control: ControlPlane, sandbox: SandboxHandle, publicUrl: string): Promise<void> {
  const demo = control.projects().find((p) => p.name === 'demo');
  if (!demo) return;
  const configured = new Set(control.providers(demo.id).filter((p) => !p.sandbox).map((p) => p.kind));
  for (const [kind, make] of Object.entries(SANDBOX_CREDENTIALS)) {
    const definition = providerKind(kind);
    if (!definition || configured.has(kind)) continue;
    const checked = definition.validate(await make(sandbox, { publicUrl, webhookPath: `/hooks/${demo.id}`, projectId: demo.id }));
    if (!checked.ok) throw new Error(`sandbox credentials for ${kind} do not validate: ${JSON.stringify(checked.problems)}`);
    await control.setProvider(demo.id, kind, checked.credentials, { sandbox: true, limits: SANDBOX_LIMITS[kind] ?? null });
  }
}

/** The composition root: wires the control plane, the sandbox, the cells and the HTTP edge, and starts them. */
export async function createApp(config: HeraldConfig, options: AppOptions = {}): Promise<HeraldApp> {
  const clock = options.clock ?? systemClock;
  const logger = pino({ level: config.logLevel, redact: ['req.headers.authorization', 'headers.authorization'] });
  const control = await openControlPlane(config, { clock, logger: logger });
  let cells: CellRuntimes | undefined;
  let sandbox: SandboxHandle | undefined;
  try {
    await control.ensureDefaultCell();
    sandbox = await openSandbox(config, clock, logger);
    const linkKey = unsubscribeKey(loadMasterKey(config, { create: true }));
    cells = new CellRuntimes(control, {
      config,
      clock,
      logger,
      delivery: { sandboxEndpoints: { ...(sandbox?.endpoints ?? {}) }, publicUrl: config.publicUrl ?? '', unsubscribeKey: linkKey.toString('hex') },
    });
    await cells.start();
    const server = await buildServer(
      {
        control,
        cells,
        limiter: new ProjectRateLimiter(clock, config.rateLimitPerSecond),
        clock,
        version: HERALD_VERSION,
        sandbox,
        unsubscribeKey: linkKey,
      },
      { logger },
    );
    const address = await server.listen({ host: config.host, port: config.port });
    // Only once listening: a start that fails (port taken) must not create keys nobody was shown.
    const demo = options.createDemo && control.projects().length === 0 ? await control.createProject('demo') : undefined;
    if (sandbox) await wireDemo(control, sandbox, config.publicUrl ?? address);
    control.watch();
    const running = cells;
    const openSandboxHandle = sandbox;
    let stopped: Promise<void> | undefined;
    return {
      url: address,
      config,
      control,
      cells,
      server,
      sandbox,
      demo,
      stop() {
        stopped ??= (async () => {
          await server.close();
          await running.stop();
          await openSandboxHandle?.close();
          await control.close();
        })();
        return stopped;
      },
    };
  } catch (error) {
    await cells?.stop().catch(() => undefined);
    await sandbox?.close().catch(() => undefined);
    await control.close().catch(() => undefined);
    throw error;
  }
}
