/**
 * Who else is using the machine: the 2 cores are shared, so every figure is reported with the CPU
 * other processes took while it was measured, and a run can wait for a quiet moment first.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { round, systemBusySeconds } from './herald-child.ts';

/** CPU other processes used while `fn` ran (the 2 cores are shared), in cores. */
export async function withOtherCpu<T>(fn: () => Promise<T>): Promise<{ value: T; otherCores: number }> {
  const busy0 = systemBusySeconds();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const other = systemBusySeconds() - busy0 - (self.user + self.system) / 1e6;
  return { value, otherCores: round(Math.max(0, other) / seconds, 2) };
}

/** CPU cores other processes use right now (sampled over 2 s). */
async function backgroundCores(): Promise<number> {
  const { otherCores } = await withOtherCpu(() => sleep(2000));
  return otherCores;
}

/** Waits (at most `maxSeconds`) until other processes use < 0.25 cores; returns what they use. */
export async function waitForQuiet(maxSeconds: number, progress: (message: string) => void): Promise<number> {
  const deadline = Date.now() + maxSeconds * 1000;
  let cores = await backgroundCores();
  while (cores >= 0.25 && Date.now() < deadline) {
    progress(`waiting for a quiet machine: other processes use ${cores} cores`);
    await sleep(10_000);
    cores = await backgroundCores();
  }
  return cores;
}
