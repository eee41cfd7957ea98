import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './net.ts';

export { freePort };

const BIN = fileURLToPath(new URL('../../bin/herald.mjs', import.meta.url));
const OUTPUT_KEPT = 64 * 1024;

/** Children still running when the test process exits are killed, whatever happened to the test. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});


export interface HeraldProcessOptions {
  dataDir: string;
  port: number;
  /** PostgreSQL URL of the control database; unset runs on embedded SQLite. */
  databaseUrl?: string | undefined;
}

export interface UnexpectedExit {
  run: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * The real `herald start` as a child process, on a fixed port so that restarts keep the URL.
 * Keeps the tail of its output for diagnostics and records every exit it did not cause.
 */
export class HeraldProcess {
  readonly url: string;
  readonly #options: HeraldProcessOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #expectingExit = false;
  #output = '';
  #runs = 0;
  secretKey: string | undefined;
  kills = 0;
  /** How long each start took to answer /v1/health, in ms. */
  readonly startMs: number[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];

  constructor(options: HeraldProcessOptions) {
    this.#options = options;
    this.url = `http://127.0.0.1:${options.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  get runs(): number {
    return this.#runs;
  }

  /** The last 64 KiB of stdout and stderr over every run. */
  get output(): string {
    return this.#output;
  }

  #append(text: string): void {
    this.#output += text;
    if (this.#output.length > OUTPUT_KEPT * 2) this.#output = this.#output.slice(-OUTPUT_KEPT);
  }

  /** Spawns `herald start` without waiting for it to answer. */
  spawn(): void {
    if (this.#child) throw new Error('herald is already running');
    const env = { ...process.env };
    for (const name of ['HERALD_DATA_DIR', 'HERALD_DATABASE_URL', 'HERALD_PORT', 'HERALD_HOST', 'HERALD_LOG_LEVEL']) delete env[name];
    const args = [BIN, 'start', '--data-dir', this.#options.dataDir, '--port', String(this.#options.port), '--log-level', 'warn'];
    if (this.#options.databaseUrl) args.push('--database-url', this.#options.databaseUrl);
    const run = ++this.#runs;
    this.#append(`\n----- run ${run} -----\n`);
    const child = spawn(process.execPath, args, { detached: false, stdio: ['ignore', 'pipe', 'pipe'], env });
    this.#child = child;
    live.add(child);
    this.#expectingExit = false;
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.#append(chunk);
      if (this.secretKey === undefined) {
        stdout += chunk;
        const m = /secret key:\s+(sk_\S+)/.exec(stdout);
        if (m) this.secretKey = m[1];
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.#append(chunk));
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        if (this.#child === child) this.#child = undefined;
        if (!this.#expectingExit) {
          this.unexpectedExits.push({ run, code, signal, output: this.#output.slice(-4000) });
        }
        resolve();
      });
    });
  }

  /** Spawns and resolves once GET /v1/health answers 200; rejects if the process exits first. */
  async start(timeoutMs = 60_000): Promise<void> {
    const t0 = Date.now();
    this.spawn();
    await this.waitHealthy(timeoutMs);
    this.startMs.push(Date.now() - t0);
  }

  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#child) throw new Error(`herald exited before it was healthy:\n${this.#output.slice(-4000)}`);
      try {
        const res = await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`herald was not healthy after ${timeoutMs} ms:\n${this.#output.slice(-4000)}`);
  }

  /**
   * Resolves once GET /v1/ready answers 200: every cell's log is open and its applier is running
   * (it may still be catching up with the log). Rejects if the process exits first.
   */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#child) throw new Error(`herald exited before it was ready:\n${this.#output.slice(-4000)}`);
      try {
        const res = await fetch(`${this.url}/v1/ready`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not answering yet
      }
      await sleep(25);
    }
    throw new Error(`herald was not ready after ${timeoutMs} ms:\n${this.#output.slice(-4000)}`);
  }

  /** SIGKILL, then waits for the process to be gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#expectingExit = true;
    process.kill(child.pid!, 'SIGKILL');
    this.kills++;
    await this.#exited;
  }

  /** SIGTERM (a clean stop), then SIGKILL if it is still running after `graceMs`. Returns the exit code. */
  async stop(graceMs = 30_000): Promise<number | null> {
    const child = this.#child;
    if (!child) return null;
    this.#expectingExit = true;
    let code: number | null = null;
    child.once('exit', (c) => {
      code = c;
    });
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }, graceMs);
    await this.#exited;
    clearTimeout(timer);
    return code;
  }
}
