import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { BehaviorRule, ActiveRule, RunningService, SandboxMessage, SandboxService } from './sandbox-model.ts';
import { SandboxBehaviors, SandboxRecorder, SandboxTrust } from './sandbox-model.ts';
import { SANDBOX_SERVICES } from './registry.ts';

/**
 * The sandbox: a protocol-faithful stand-in for every provider, so Herald runs and is tested with
 * no credentials and no internet. Whoever uses it goes through this handle, whether the sandbox
 * runs in the same process (`herald start`) or in another (`herald sandbox serve`, for crash tests).
 */
export interface SandboxHandle {
  /** Provider kind → where its stand-in listens. */
  readonly endpoints: Readonly<Record<string, string>>;
  messages(filter: { channel?: string; kind?: string; to?: string; limit?: number; afterId?: number }): Promise<SandboxMessage[]>;
  counts(): Promise<Record<string, number>>;
  addBehavior(rule: BehaviorRule): Promise<ActiveRule>;
  clearBehaviors(): Promise<void>;
  /** Registers key material a stand-in must accept (an APNs key, an FCM service account, …). */
  trust(kind: string, id: string, material: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export interface LocalSandbox extends SandboxHandle {
  readonly recorder: SandboxRecorder;
  readonly behaviors: SandboxBehaviors;
  readonly trustStore: SandboxTrust;
}

export interface SandboxOptions {
  clock: Clock;
  logger: Logger;
  host?: string;
  /** How many messages to keep for listing (counts are kept for all). */
  keep?: number;
  services?: readonly SandboxService[];
  /** First port of a fixed range (one per stand-in, in registry order); 0 or absent: any free ports. */
  basePort?: number;
}

/** Starts every stand-in in this process. */
export async function startSandbox(options: SandboxOptions): Promise<LocalSandbox> {
  const recorder = new SandboxRecorder(options.clock, options.keep);
  const behaviors = new SandboxBehaviors(options.clock);
  const trustStore = new SandboxTrust();
  const services = options.services ?? SANDBOX_SERVICES;
  const basePort = options.basePort ?? 0;
  const context = {
    recorder,
    behaviors,
    trust: trustStore,
    clock: options.clock,
    logger: options.logger,
    host: options.host ?? '127.0.0.1',
    portFor: (kind: string) => (basePort > 0 ? basePort + Math.max(0, services.findIndex((s) => s.kind === kind)) : 0),
  };
  const running: [string, RunningService][] = [];
  try {
    for (const service of services) running.push([service.kind, await service.start(context)]);
  } catch (error) {
    await Promise.all(running.map(([, r]) => r.close().catch(() => undefined)));
    throw error;
  }
  const endpoints = Object.freeze(Object.fromEntries(running.map(([kind, r]) => [kind, r.endpoint])));
  return {
    endpoints,
    recorder,
    behaviors,
    trustStore,
    messages: (filter) => Promise.resolve(recorder.list(filter)),
    counts: () => Promise.resolve(recorder.counts()),
    addBehavior: (rule) => Promise.resolve(behaviors.add(rule)),
    clearBehaviors: () => Promise.resolve(behaviors.clear()),
    trust: (kind, id, material) => Promise.resolve(trustStore.register(kind, id, material)),
    async close() {
      await Promise.all(running.map(([, r]) => r.close().catch(() => undefined)));
    },
  };
}
