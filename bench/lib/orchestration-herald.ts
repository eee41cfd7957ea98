/**
 * `herald start` on a copy of the seeded data directory (not a first start: no key is printed, the
 * seed recorded it), delivering to a `herald sandbox serve` child through HERALD_SANDBOX, plus the
 * few API calls the orchestration benchmark makes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { requestJson, type JsonAnswer } from './delivery-http.ts';
import { freePort, processCpuSeconds, statusMb, terminate, type ThreadCpu } from './herald-child.ts';

const BIN = fileURLToPath(new URL('../../bin/herald.mjs', import.meta.url));
const CLOCK_TICKS_PER_S = 100;

export class OrchestrationHerald {
  readonly url: string;
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  /** The Authorization header value for the demo project's secret key. */
  readonly authorization: string;
  #output = '';

  private constructor(child: ChildProcess, port: number, secretKey: string) {
    this.#child = child;
    this.url = `http://127.0.0.1:${port}`;
    this.authorization = `Bearer ${secretKey}`;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-64 * 1024);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Starts Herald on `dataDir` and resolves once /v1/ready answers ready. */
  static async start(options: { dataDir: string; secretKey: string; sandboxUrl: string; nodeArgs: string[] }): Promise<OrchestrationHerald> {
    const port = await freePort();
    const args = [...options.nodeArgs, BIN, 'start', '--data-dir', options.dataDir, '--port', String(port), '--log-level', 'warn'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HERALD_SANDBOX: options.sandboxUrl } });
    const herald = new OrchestrationHerald(child, port, options.secretKey);
    const started = Date.now();
    while (Date.now() < started + 60_000) {
      try {
        if ((await fetch(`${herald.url}/v1/ready`)).ok) return herald;
      } catch {
        // not listening yet
      }
      if (child.exitCode !== null) break;
      await sleep(100);
    }
    child.kill('SIGKILL');
    throw new Error(`Herald did not become ready:\n${herald.#output}`);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get output(): string {
    return this.#output;
  }

  /** One API call with the demo project's secret key; `body` is sent as JSON. */
  call(method: string, path: string, body?: unknown): Promise<JsonAnswer> {
    return requestJson(this.agent, `${this.url}${path}`, method, { authorization: this.authorization }, body === undefined ? undefined : JSON.stringify(body));
  }

  /** The call's JSON answer, or an error naming the status when it is not `expected`. */
  async json<T>(method: string, path: string, body: unknown, expected: number): Promise<T> {
    const answer = await this.call(method, path, body);
    if (answer.status !== expected) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.body.slice(0, 500)}`);
    return JSON.parse(answer.body) as T;
  }

  statusMb(field: 'VmRSS' | 'VmHWM'): number {
    return statusMb(this.pid, field);
  }

  cpuSeconds(): number {
    return processCpuSeconds(this.pid);
  }

  /** CPU seconds per thread so far, with the thread's name (the main thread's tid is the pid). */
  threadCpu(): (ThreadCpu & { name: string })[] {
    const out: (ThreadCpu & { name: string })[] = [];
    for (const tid of fs.readdirSync(`/proc/${this.pid}/task`)) {
      try {
        const stat = fs.readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        out.push({ tid: Number(tid), cpuS: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S, name: Number(tid) === this.pid ? 'main' : `${comm} ${tid}` });
      } catch {
        // the thread ended meanwhile
      }
    }
    return out;
  }

  async stop(graceMs = 30_000): Promise<number | null> {
    this.agent.destroy();
    return terminate(this.#child, this.#exited, graceMs);
  }
}
