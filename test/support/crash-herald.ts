import type { ChildProcess } from 'node:child_process';
import { freePort } from './net.ts';
import { OutputTail, secretKeyIn, spawnHerald, stopChild, waitFor200 } from './child-process.ts';

export { freePort };

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
  readonly #output = new OutputTail();
  #child: ChildProcess | undefined;
  #exited: Promise<unknown> = Promise.resolve();
  #expectingExit = false;
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
    return this.#output.text;
  }

  /** Spawns `herald start` without waiting for it to answer. */
  spawn(): void {
    if (this.#child) throw new Error('herald is already running');
    const args = ['start', '--data-dir', this.#options.dataDir, '--port', String(this.#options.port), '--log-level', 'warn'];
    if (this.#options.databaseUrl) args.push('--database-url', this.#options.databaseUrl);
    const run = ++this.#runs;
    this.#output.append(`\n----- run ${run} -----\n`);
    const { child, exited } = spawnHerald(args, this.#output);
    this.#child = child;
    this.#expectingExit = false;
    child.stdout!.on('data', () => {
      this.secretKey ??= secretKeyIn(this.#output.text);
    });
    this.#exited = exited.then(({ code, signal }) => {
      if (this.#child === child) this.#child = undefined;
      if (!this.#expectingExit) this.unexpectedExits.push({ run, code, signal, output: this.#output.text.slice(-4000) });
    });
  }

  /** Spawns and resolves once GET /v1/health answers 200; rejects if the process exits first. */
  async start(timeoutMs = 60_000): Promise<void> {
    const t0 = Date.now();
    this.spawn();
    await this.waitHealthy(timeoutMs);
    this.startMs.push(Date.now() - t0);
  }

  waitHealthy(timeoutMs = 60_000): Promise<void> {
    return waitFor200(`${this.url}/v1/health`, () => this.running, () => this.output, timeoutMs, 'healthy');
  }

  /**
   * Resolves once GET /v1/ready answers 200: every cell's log is open and its applier is running
   * (it may still be catching up with the log). Rejects if the process exits first.
   */
  waitReady(timeoutMs = 60_000): Promise<void> {
    return waitFor200(`${this.url}/v1/ready`, () => this.running, () => this.output, timeoutMs, 'ready');
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
    return stopChild(child, this.#exited, graceMs);
  }
}
