import fs from 'node:fs';
import path from 'node:path';
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
  /** A directory where the sandbox keeps what it trusts and a log of what it received (for `herald sandbox tail`). */
  dir?: string;
}

/** Starts every stand-in in this process. */
export async function startSandbox(options: SandboxOptions): Promise<LocalSandbox> {
  const recorder = new SandboxRecorder(options.clock, options.keep);
  const behaviors = new SandboxBehaviors(options.clock);
  const trustStore = new SandboxTrust(options.dir ? jsonFile(path.join(options.dir, 'trust.json')) : undefined);
  if (options.dir) recorder.onMessage(appendTo(path.join(options.dir, MESSAGES_FILE)));
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

/** The file `herald sandbox tail` follows: one JSON line per message received. */
export const MESSAGES_FILE = 'messages.ndjson';
const MESSAGES_FILE_LIMIT = 20 * 1024 * 1024;

function jsonFile(file: string) {
  return {
    load(): Record<string, Record<string, Record<string, string>>> {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, Record<string, string>>>;
      } catch {
        return {};
      }
    },
    save(all: Record<string, Record<string, Record<string, string>>>): void {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const temp = `${file}.tmp-${process.pid}`;
      fs.writeFileSync(temp, JSON.stringify(all), { mode: 0o600 });
      fs.renameSync(temp, file);
    },
  };
}

/** Appends each received message to a JSON-lines file, starting a new one past 20 MB. */
function appendTo(file: string): (message: SandboxMessage) => void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  return (message) => {
    const line = `${JSON.stringify(message)}\n`;
    try {
      if (size + line.length > MESSAGES_FILE_LIMIT) {
        fs.renameSync(file, `${file}.1`);
        size = 0;
      }
      fs.appendFileSync(file, line);
      size += line.length;
    } catch {
      // the log is a convenience for `herald sandbox tail`; delivery to the sandbox does not depend on it
    }
  };
}
