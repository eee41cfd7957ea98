import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/support/net.ts';

export { freePort };

const BIN = fileURLToPath(new URL('../../bin/herald.mjs', import.meta.url));
const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux


export interface ReadyCell {
  id: string;
  lag: number;
  log: { head_seq: number };
  store: { applied_seq: number; state: string };
}

export interface ThreadCpu {
  tid: number;
  cpuS: number;
}

/** CPU seconds (user + system) of a process or thread, from /proc/…/stat. */
function statCpuSeconds(statFile: string): number {
  const text = fs.readFileSync(statFile, 'utf8');
  // Fields after the command name "(…)", which may contain spaces: state is field 3, utime 14, stime 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

function cpuTicks(): number[] {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal …
  return line.trim().split(/\s+/).slice(1).map(Number);
}

/** CPU seconds busy on the whole machine (all cores, every process, steal excluded) so far, from /proc/stat. */
export function systemBusySeconds(): number {
  const t = cpuTicks();
  return (t[0]! + t[1]! + t[2]! + t[5]! + t[6]!) / CLOCK_TICKS_PER_S;
}

/** CPU seconds the hypervisor gave to others while this VM wanted to run (steal) so far. */
export function systemStealSeconds(): number {
  return (cpuTicks()[7] ?? 0) / CLOCK_TICKS_PER_S;
}

/** Bytes written to block devices by the whole machine so far (sectors of whole disks, /proc/diskstats). */
export function systemDiskWriteBytes(): number {
  let sectors = 0;
  for (const line of fs.readFileSync('/proc/diskstats', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && /^((vd|sd|xvd)[a-z]+|nvme\d+n\d+)$/.test(f[2]!)) sectors += Number(f[9]);
  }
  return sectors * 512;
}

/** Bytes this process caused to be written to storage so far (/proc/<pid>/io write_bytes). */
export function processWriteBytes(pid: number): number {
  const match = /^write_bytes:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/** One field of /proc/<pid>/status in MB (VmRSS, VmHWM, …); NaN once the process is gone. */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds used by a process (every thread) so far. */
export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/**
 * The HTTP baseline server (bench/lib/baseline-server.ts) as a child process: bare node:http, JSON
 * parse, 202 — the protocol limit on this machine with this load generator.
 */
export class BaselineChild {
  readonly url: string;
  readonly pid: number;
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.pid = child.pid!;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(port: number): Promise<BaselineChild> {
    const entry = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', entry, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`baseline server exited with ${String(code)}`)));
    });
    return new BaselineChild(child, port);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGTERM');
    await exited;
  }
}

/**
 * The real `herald start` as a child process on a fresh data dir. Exposes what the benchmark
 * measures from outside: the secret key it prints on first start, /v1/ready, and /proc figures.
 */
export class HeraldChild {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #output = '';
  secretKey = '';
  /** Set when Herald needed help to become ready (see start()). */
  startupWarning: string | undefined;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.url = `http://127.0.0.1:${port}`;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-64 * 1024);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Starts Herald and resolves once it printed its secret key and /v1/ready answers ready. */
  static async start(options: {
    dataDir: string;
    port: number;
    nodeArgs?: string[];
    env?: NodeJS.ProcessEnv;
    /** Entry point to run instead of bin/herald.mjs. */
    bin?: string | undefined;
  }): Promise<HeraldChild> {
    const child = spawn(
      process.execPath,
      [
        ...(options.nodeArgs ?? []),
        options.bin ?? BIN,
        'start',
        '--data-dir',
        options.dataDir,
        '--port',
        String(options.port),
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
    );
    const herald = new HeraldChild(child, options.port);
    const started = Date.now();
    let probed = false;
    while (Date.now() < started + 30_000) {
      const match = /secret key:\s+(sk_[A-Za-z0-9_]+)/.exec(herald.#output);
      if (match) herald.secretKey = match[1]!;
      if (herald.secretKey && (await herald.isReady())) return herald;
      if (child.exitCode !== null) break;
      if (herald.secretKey && !probed && Date.now() > started + 10_000) {
        // Seen at 7636963: when the first open of a fresh log fails ("database is locked": the log
        // writer and the applier thread create it at once), /v1/ready stays 503 until an append
        // succeeds. One append clears it; the warning goes into the benchmark's output.
        probed = true;
        herald.startupWarning = `not ready 10 s after start (${await herald.readyError()}); one probe append made it ready`;
        await fetch(`${herald.url}/v1/profiles/update`, {
          method: 'POST',
          headers: { authorization: `Bearer ${herald.secretKey}`, 'content-type': 'application/json' },
          body: JSON.stringify([{ identifiers: { custom_id: 'bench-probe' }, events: [{ name: 'probe' }] }]),
        }).catch(() => undefined);
      }
      await sleep(100);
    }
    child.kill('SIGKILL');
    throw new Error(
      `Herald did not start (secret key ${herald.secretKey ? 'seen' : 'not seen'}):\n${herald.#output}`,
    );
  }

  get pid(): number {
    return this.#child.pid!;
  }

  async isReady(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/v1/ready`);
      return response.ok;
    } catch {
      return false;
    }
  }

  async readyError(): Promise<string> {
    try {
      const body = (await (await fetch(`${this.url}/v1/ready`)).json()) as {
        cells?: { log?: { error?: string } }[];
      };
      return body.cells?.[0]?.log?.error ?? 'unknown';
    } catch (error) {
      return String(error);
    }
  }

  async ready(): Promise<ReadyCell> {
    const response = await fetch(`${this.url}/v1/ready`);
    const body = (await response.json()) as { cells: ReadyCell[] };
    return body.cells[0]!;
  }

  /** One field of /proc/<pid>/status in MB (VmRSS, VmHWM, …). */
  statusMb(field: 'VmRSS' | 'VmHWM'): number {
    return statusMb(this.pid, field);
  }

  /** CPU seconds used by the whole process (every thread) so far. */
  cpuSeconds(): number {
    return processCpuSeconds(this.pid);
  }

  /** Bytes Herald caused to be written to storage so far. */
  writeBytes(): number {
    return processWriteBytes(this.pid);
  }

  /** CPU seconds per thread so far (Node does not name its threads; the main thread's tid is the pid). */
  threadCpu(): ThreadCpu[] {
    const out: ThreadCpu[] = [];
    for (const tid of fs.readdirSync(`/proc/${this.pid}/task`)) {
      try {
        out.push({ tid: Number(tid), cpuS: statCpuSeconds(`/proc/${this.pid}/task/${tid}/stat`) });
      } catch {
        // the thread ended meanwhile
      }
    }
    return out;
  }

  get output(): string {
    return this.#output;
  }

  /** SIGTERM (Herald commits what it accepted and stops), SIGKILL after `graceMs`. */
  stop(graceMs = 20_000): Promise<number | null> {
    return terminate(this.#child, this.#exited, graceMs);
  }
}

/** Per-thread CPU used between two snapshots, busiest first, the main thread marked. */
export function threadCpuDelta(
  pid: number,
  before: ThreadCpu[],
  after: ThreadCpu[],
): { thread: string; cpu_s: number }[] {
  const start = new Map(before.map((t) => [t.tid, t.cpuS]));
  return after
    .map((t) => ({
      thread: t.tid === pid ? 'main' : `tid ${t.tid}`,
      cpu_s: round(t.cpuS - (start.get(t.tid) ?? 0), 2),
    }))
    .filter((t) => t.cpu_s >= 0.05)
    .sort((a, b) => b.cpu_s - a.cpu_s);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
export async function terminate(child: ChildProcess, exited: Promise<number | null>, graceMs: number): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
