import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * What the tests that run real `herald` processes share: the entry point, an environment free of
 * a developer's HERALD_* settings, a kept tail of the output, and a registry that SIGKILLs every
 * child still running when the test process exits, whatever happened to the test.
 */

export const HERALD_BIN = fileURLToPath(new URL('../../bin/herald.mjs', import.meta.url));
const OUTPUT_KEPT = 64 * 1024;

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

/** The environment of a child: the test's, without the Herald settings a developer may have exported. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('HERALD_') && !name.startsWith('HERALD_TEST_')) delete env[name];
  return { ...env, ...extra };
}

/** Keeps the tail (64 KiB) of a child's output for diagnostics. */
export class OutputTail {
  #text = '';
  append(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > OUTPUT_KEPT * 2) this.#text = this.#text.slice(-OUTPUT_KEPT);
  }
  get text(): string {
    return this.#text;
  }
}

/**
 * Spawns `node bin/herald.mjs …args` with piped output going to `output`; `exited` resolves with
 * how it ended, after the child is out of the registry.
 */
export function spawnHerald(
  args: readonly string[],
  output: OutputTail,
  options: SpawnOptions = {},
): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [HERALD_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(), ...options });
  live.add(child);
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => output.append(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => output.append(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, exited };
}

/** SIGTERM (a clean stop), then SIGKILL if it is still running after `graceMs`. Returns the exit code. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs: number): Promise<number | null> {
  let code: number | null = null;
  child.once('exit', (c) => {
    code = c;
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return code;
}

/**
 * Polls `url` until it answers 200. Rejects with `output` if `alive()` turns false first, or at
 * the deadline.
 */
export async function waitFor200(url: string, alive: () => boolean, output: () => string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`herald exited before it was ${what}:\n${output().slice(-4000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not answering yet
    }
    await sleep(25);
  }
  throw new Error(`herald was not ${what} after ${timeoutMs} ms:\n${output().slice(-4000)}`);
}

/** Parses the demo project's secret key from the first start's banner, once it has been printed. */
export function secretKeyIn(text: string): string | undefined {
  return /secret key:\s+(sk_\S+)/.exec(text)?.[1];
}
