import type { ControlPlane } from '../control/control-plane.ts';
import { HeraldError } from '../core/errors.ts';
import { CellRuntime, type CellDeps } from './cell-runtime.ts';

/** The runtimes of every cell, started as cells appear in the control plane. */
export class CellRuntimes {
  readonly #runtimes = new Map<string, CellRuntime>();
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(
    private readonly control: ControlPlane,
    private readonly deps: CellDeps,
  ) {}

  /** Starts every cell, and resolves when their logs answered (at most `readyTimeoutMs` each). */
  async start(readyTimeoutMs = 15_000): Promise<void> {
    const runtimes = this.control.cells().map((cell) => this.#ensure(cell.id));
    this.#unsubscribe = this.control.onChange(() => {
      for (const cell of this.control.cells()) this.#ensure(cell.id);
    });
    await Promise.all(runtimes.map((r) => r.logReady(readyTimeoutMs)));
  }

  #ensure(cellId: string): CellRuntime {
    let runtime = this.#runtimes.get(cellId);
    if (runtime) return runtime;
    const cell = this.control.cell(cellId);
    if (!cell || this.#stopped) throw new HeraldError('STORE_UNAVAILABLE', { message: `Cell ${cellId} is not available here.`, retryAfterSeconds: 2 });
    runtime = new CellRuntime(cell, this.deps);
    runtime.start();
    this.#runtimes.set(cellId, runtime);
    return runtime;
  }

  /** The runtime of a cell, starting it if the cell was added since. */
  get(cellId: string): CellRuntime {
    return this.#ensure(cellId);
  }

  all(): CellRuntime[] {
    return [...this.#runtimes.values()];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    await Promise.all(this.all().map((r) => r.stop()));
  }
}
