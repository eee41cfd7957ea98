/**
 * Where the CPU went during a phase of the orchestration benchmark: Herald per thread, the sandbox,
 * this process and everything else on the (shared, 2-core) machine.
 */
import fs from 'node:fs';
import { round, systemBusySeconds, systemStealSeconds } from './herald-child.ts';
import type { OrchestrationHerald } from './orchestration-herald.ts';

type Row = Record<string, unknown>;

const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Microseconds during which some runnable task waited for a CPU (Linux PSI), or NaN without PSI. */
function cpuPressureUs(): number {
  try {
    const match = /^some .*total=(\d+)/m.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    return match ? Number(match[1]) : NaN;
  } catch {
    return NaN;
  }
}

export interface CpuSource {
  cpuSeconds(): number;
}

export class CpuMeter {
  readonly #t0 = performance.now();
  readonly #system0 = systemBusySeconds();
  readonly #steal0 = systemStealSeconds();
  readonly #self0 = selfCpuSeconds();
  readonly #pressure0 = cpuPressureUs();
  readonly #sandbox0: number;
  readonly #herald0: number;
  readonly #threads0: Map<number, number>;

  constructor(
    private readonly sandbox: CpuSource | undefined,
    private readonly herald: OrchestrationHerald | undefined,
  ) {
    this.#sandbox0 = sandbox?.cpuSeconds() ?? 0;
    this.#herald0 = herald?.cpuSeconds() ?? 0;
    this.#threads0 = new Map((herald?.threadCpu() ?? []).map((t) => [t.tid, t.cpuS]));
  }

  read(): Row {
    const seconds = (performance.now() - this.#t0) / 1000;
    const system = systemBusySeconds() - this.#system0;
    const self = selfCpuSeconds() - this.#self0;
    const sandbox = this.sandbox ? this.sandbox.cpuSeconds() - this.#sandbox0 : 0;
    const herald = this.herald ? this.herald.cpuSeconds() - this.#herald0 : 0;
    const out: Row = {
      seconds: round(seconds, 2),
      machine_busy_cores: round(system / seconds, 2),
      other_processes_cpu_cores: round(Math.max(0, system - sandbox - herald - self) / seconds, 2),
      steal_cores: round((systemStealSeconds() - this.#steal0) / seconds, 2),
      // Share of the time some runnable thread waited for a core: the machine was short of CPU.
      cpu_pressure_pct: round(((cpuPressureUs() - this.#pressure0) / 1e6 / seconds) * 100),
      bench_process_cpu_s: round(self, 2),
    };
    if (this.sandbox) out.sandbox_cpu_s = round(sandbox, 2);
    if (this.herald) {
      out.herald_cpu_s = round(herald, 2);
      out.herald_threads = this.herald
        .threadCpu()
        .map((t) => {
          const cpu = t.cpuS - (this.#threads0.get(t.tid) ?? 0);
          return { thread: t.name, cpu_s: round(cpu, 2), cores: round(cpu / seconds, 2) };
        })
        .filter((t) => t.cpu_s >= 0.1)
        .sort((a, b) => b.cpu_s - a.cpu_s);
    }
    return out;
  }
}
