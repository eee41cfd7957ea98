import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { childEnv, OutputTail, secretKeyIn, spawnHerald, stopChild, waitFor200 } from './child-process.ts';
import { freePort } from './net.ts';

/*
 * The two processes of the delivery crash test: a `herald sandbox serve` that outlives every Herald
 * it serves (so what it received is counted across the kills), and a `herald start` wired to it
 * with --sandbox <control URL>, started again and again on the same port and data directory.
 */

/** `herald sandbox serve --port P` puts its six stand-ins on P+1 … P+6. */
const SANDBOX_SERVICE_PORTS = 6;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port P such that P … P+6 are free right now. */
async function freePortRange(size: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + size >= 65_000) continue;
    let ok = true;
    for (let p = base + 1; p <= base + size && ok; p++) ok = await portIsFree(p);
    if (ok) return base;
  }
  throw new Error(`no range of ${size + 1} free ports found`);
}

export interface SandboxDelivery {
  id: number;
  kind: string;
  to: string;
  receivedAt: number;
  headers: Record<string, string>;
  body: unknown;
}

/** `herald sandbox serve` as a child process, and a client of its control API. */
export class SandboxServer {
  readonly #child: ChildProcess;
  readonly #output: OutputTail;
  readonly #exited: Promise<void>;
  readonly url: string;

  private constructor(child: ChildProcess, output: OutputTail, exited: Promise<void>, url: string) {
    this.#child = child;
    this.#output = output;
    this.#exited = exited;
    this.url = url;
  }

  get output(): string {
    return this.#output.text;
  }

  /** Starts it (on a fresh port range; retried if another process took a port meanwhile). */
  static async start(dataDir: string, keep: number): Promise<SandboxServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await SandboxServer.#startOnce(dataDir, keep, await freePortRange(SANDBOX_SERVICE_PORTS));
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  static async #startOnce(dataDir: string, keep: number, port: number): Promise<SandboxServer> {
    const output = new OutputTail();
    const { child, exited: ended } = spawnHerald(['sandbox', 'serve', '--data-dir', dataDir, '--port', String(port), '--keep', String(keep)], output);
    const exited = ended.then(() => undefined);
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the sandbox did not start within 60 s:\n${output.text}`)), 60_000);
      child.stdout!.on('data', () => {
        const m = /control API at (http:\/\/\S+)/.exec(output.text);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the sandbox exited at start:\n${output.text}`));
      });
    });
    return new SandboxServer(child, output, exited, url);
  }

  async #get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(60_000) });
    if (!res.ok) throw new Error(`sandbox GET ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Deliveries received per provider kind (never forgets, whatever `keep` is). */
  counts(): Promise<Record<string, number>> {
    return this.#get('/counts');
  }

  /** Every kept delivery of a kind, oldest first. */
  async deliveries(kind: string, limit: number): Promise<SandboxDelivery[]> {
    const { messages } = await this.#get<{ messages: SandboxDelivery[] }>(`/messages?kind=${kind}&limit=${limit}`);
    return messages.reverse();
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGKILL');
    await this.#exited;
  }
}

export interface HeraldRun {
  run: number;
  /** Date.now() just before the process was spawned. */
  spawnedAt: number;
  /** Date.now() once it had exited (null while it runs). */
  exitedAt: number | null;
  /** How it ended: 'SIGKILL' by the test, 'stop' for a clean stop, or 'unexpected: …'. */
  end: string | null;
}

export interface DeliveryHeraldOptions {
  dataDir: string;
  port: number;
  /** The control URL of a `herald sandbox serve`. */
  sandboxUrl: string;
  /** PostgreSQL URL of the control database; unset runs on embedded SQLite. */
  databaseUrl?: string | undefined;
  /** Extra environment, e.g. HERALD_DELIVERY_LEASE_MS. */
  env?: Record<string, string>;
}

/**
 * The real `herald start --sandbox <url>` as a child process, on a fixed port and data directory so
 * that restarts keep the URL and the data. Records when each run started and ended: the test
 * attributes what the sandbox received to the run that sent it by time.
 */
export class DeliveryHerald {
  readonly url: string;
  readonly #options: DeliveryHeraldOptions;
  readonly #output = new OutputTail();
  #child: ChildProcess | undefined;
  #exited: Promise<unknown> = Promise.resolve();
  #expectingExit: string | null = null;
  readonly runs: HeraldRun[] = [];
  secretKey: string | undefined;
  /** Herald's log lines of level warn and above, counted by message (all runs). */
  readonly logged = new Map<string, number>();
  #partial = '';

  constructor(options: DeliveryHeraldOptions) {
    this.#options = options;
    this.url = `http://127.0.0.1:${options.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  get output(): string {
    return this.#output.text;
  }

  get kills(): number {
    return this.runs.filter((r) => r.end === 'SIGKILL').length;
  }

  get unexpectedExits(): HeraldRun[] {
    return this.runs.filter((r) => r.end !== null && r.end.startsWith('unexpected'));
  }

  spawn(): void {
    if (this.#child) throw new Error('herald is already running');
    const o = this.#options;
    const args = ['start', '--data-dir', o.dataDir, '--port', String(o.port), '--sandbox', o.sandboxUrl, '--log-level', 'warn'];
    if (o.databaseUrl) args.push('--database-url', o.databaseUrl);
    const run: HeraldRun = { run: this.runs.length + 1, spawnedAt: Date.now(), exitedAt: null, end: null };
    this.runs.push(run);
    this.#output.append(`\n----- run ${run.run} -----\n`);
    const { child, exited } = spawnHerald(args, this.#output, { env: childEnv(o.env ?? {}) });
    this.#child = child;
    this.#expectingExit = null;
    this.#partial = '';
    child.stdout!.on('data', (chunk: string) => {
      this.secretKey ??= secretKeyIn(this.#output.text);
      this.#countLogLines(chunk);
    });
    this.#exited = exited.then(({ code, signal }) => {
      run.exitedAt = Date.now();
      run.end = this.#expectingExit ?? `unexpected: code ${code}, signal ${signal}`;
      if (this.#child === child) this.#child = undefined;
    });
  }

  /** Spawns and resolves once GET /v1/ready answers 200; rejects if the process exits first. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.spawn();
    await waitFor200(`${this.url}/v1/ready`, () => this.running, () => this.output, timeoutMs, 'ready');
  }

  /** Counts pino JSON lines (level ≥ 40) by their `msg`. */
  #countLogLines(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string; err?: string };
        if ((entry.level ?? 0) < 40) continue;
        const key = `${entry.level === 40 ? 'warn' : 'error'}: ${entry.msg ?? '?'}${entry.err ? ` (${entry.err.slice(0, 120)})` : ''}`;
        this.logged.set(key, (this.logged.get(key) ?? 0) + 1);
      } catch {
        // not a log line
      }
    }
  }

  /** SIGKILL, then waits for the process to be gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#expectingExit = 'SIGKILL';
    process.kill(child.pid!, 'SIGKILL');
    await this.#exited;
  }

  /** SIGTERM (a clean stop), then SIGKILL after `graceMs`. Returns the exit code. */
  async stop(graceMs = 30_000): Promise<number | null> {
    const child = this.#child;
    if (!child) return null;
    this.#expectingExit = 'stop';
    return stopChild(child, this.#exited, graceMs);
  }

  /** The run (1-based) that was alive at `atMs`: the last one spawned at or before it. */
  runAt(atMs: number): number {
    let found = 0;
    for (const r of this.runs) if (r.spawnedAt <= atMs) found = r.run;
    return found;
  }
}
