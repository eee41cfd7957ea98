import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.ts';

export { freePort };

/**
 * The `herald` command run as a real child process (`node bin/herald.mjs …`), the way a user runs
 * it. Every child is tracked so that a suite's `after` can kill whatever is still running, even
 * when a test failed half-way.
 */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HERALD_BIN = path.join(REPO_ROOT, 'bin', 'herald.mjs');

const live = new Set<ChildProcess>();

/** The environment of a child: ours without HERALD_* (so only the test's flags count) and without node:test's markers. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('HERALD_') || name.startsWith('NODE_TEST')) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

function spawnHerald(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [HERALD_BIN, ...args], { cwd: REPO_ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs one `herald …` command to completion (killed after `timeoutMs`, reported as timedOut). */
export function runHerald(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnHerald(args, options.env ?? {});
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs `herald … --json` and parses what it printed; fails with the output if it did not succeed. */
export async function runHeraldJson<T = any>(args: string[], options: { env?: Record<string, string> } = {}): Promise<T> {
  const result = await runHerald([...args, '--json'], options);
  if (result.code !== 0) throw new Error(`herald ${args.join(' ')} --json exited ${result.code}: ${result.stderr}${result.stdout}`);
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`herald ${args.join(' ')} --json printed no JSON: ${result.stdout}`);
  }
}


export interface HeraldServer {
  child: ChildProcess;
  url: string;
  projectId: string;
  secretKey: string;
  publicKey: string;
  /** Everything the server printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with its exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts `herald start` and waits until it printed its URL and, unless `expectKeys` is false, the
 * demo project's keys (printed once, on the first start on an empty data dir). Without keys, the
 * key fields are empty strings.
 */
export async function startHerald(dataDir: string, options: { port: number; expectKeys?: boolean; timeoutMs?: number }): Promise<HeraldServer> {
  const child = spawnHerald(['start', '--data-dir', dataDir, '--port', String(options.port), '--log-level', 'warn'], {});
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  const stop = async (graceMs = 15_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const pick = (re: RegExp) => re.exec(output)?.[1];
  const expectKeys = options.expectKeys ?? true;
  const ready = () => pick(/running at (http:\/\/\S+)/) && (!expectKeys || (pick(/secret key:\s+(sk_\S+)/) && pick(/public key:\s+(pk_\S+)/)));
  while (!ready()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`herald start exited early (${child.exitCode ?? child.signalCode}):\n${output}`);
    if (Date.now() > deadline) {
      await stop(1000);
      throw new Error(`herald start did not print its URL and keys in time:\n${output}`);
    }
    await sleep(50);
  }
  return {
    child,
    url: pick(/running at (http:\/\/\S+)/)!,
    projectId: pick(/project id:\s+(prj_\S+)/) ?? '',
    secretKey: pick(/secret key:\s+(sk_\S+)/) ?? '',
    publicKey: pick(/public key:\s+(pk_\S+)/) ?? '',
    output: () => output,
    stop,
  };
}

/** Kills every child this module started that is still running (for `after`, also on failure). */
export async function killAllHeraldChildren(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it returns something other than undefined, or fails after `deadlineMs`
 * with `what` and the last value seen. A generous deadline, not a timing assertion.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'undefined';
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; last: ${last instanceof Error ? last.message : String(last)}`);
    await sleep(intervalMs);
  }
}
