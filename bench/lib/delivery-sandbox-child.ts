import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuSeconds, statusMb, terminate } from './herald-child.ts';

const BIN = fileURLToPath(new URL('../../bin/herald.mjs', import.meta.url));

/**
 * `herald sandbox serve` as its own process: the provider stand-ins the delivery benchmark sends
 * to, from Herald and from the raw and peer clients alike. Its control API (GET /endpoints,
 * GET /counts, POST /trust) is how the benchmark counts what arrived and registers keys.
 */
export class SandboxChild {
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #output = '';
  controlUrl = '';
  endpoints: Record<string, string> = {};

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-64 * 1024);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /**
   * Starts `herald sandbox serve --data-dir <dir> [--port <port>] --keep <keep>`. Without a port the
   * control API and the stand-ins take free ports (the machine is shared: fixed ranges collide).
   */
  static async start(options: { dataDir: string; port?: number; keep?: number; nodeArgs?: string[] }): Promise<SandboxChild> {
    const args = [...(options.nodeArgs ?? []), BIN, 'sandbox', 'serve', '--data-dir', options.dataDir, '--keep', String(options.keep ?? 1000)];
    if (options.port) args.push('--port', String(options.port));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const sandbox = new SandboxChild(child);
    const started = Date.now();
    while (Date.now() < started + 30_000) {
      const match = /control API at (http:\/\/\S+)/.exec(sandbox.#output);
      if (match) {
        sandbox.controlUrl = match[1]!;
        try {
          sandbox.endpoints = (await (await fetch(`${sandbox.controlUrl}/endpoints`)).json()) as Record<string, string>;
          return sandbox;
        } catch {
          // not answering yet
        }
      }
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    child.kill('SIGKILL');
    throw new Error(`the sandbox did not start:\n${sandbox.#output}`);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get output(): string {
    return this.#output;
  }

  /** Messages received so far, per provider kind (counts are kept for every message, not just the last `keep`). */
  async counts(): Promise<Record<string, number>> {
    const response = await fetch(`${this.controlUrl}/counts`);
    return (await response.json()) as Record<string, number>;
  }

  async count(kind: string): Promise<number> {
    return (await this.counts())[kind] ?? 0;
  }

  /** The `trust` half of a SandboxHandle, over the control API: registers key material with the stand-ins. */
  async trust(kind: string, id: string, material: Record<string, string>): Promise<void> {
    const response = await fetch(`${this.controlUrl}/trust`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind, id, material }),
    });
    if (!response.ok) throw new Error(`sandbox POST /trust answered ${response.status}`);
  }

  cpuSeconds(): number {
    return processCpuSeconds(this.pid);
  }

  statusMb(field: 'VmRSS' | 'VmHWM'): number {
    return statusMb(this.pid, field);
  }

  stop(graceMs = 10_000): Promise<number | null> {
    return terminate(this.#child, this.#exited, graceMs);
  }
}
