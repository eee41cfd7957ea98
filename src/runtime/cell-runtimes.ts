import type { HeraldConfig } from '../config/config.ts';
import type { ControlPlane } from '../control/control-plane.ts';
import type { Clock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { CellRuntime } from './cell-runtime.ts';

/** The runtimes of every cell, started as cells appear in the control plane. */
export class CellRuntimes {
  readonly #runtimes = new Map<string, CellRuntime>();
  readonly #starting = new Map<string, Promise<CellRuntime>>();
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly control: ControlPlane,
    private readonly deps: { config: HeraldConfig; clock: Clock; logger: Logger },
  ) {}

  async start(): Promise<void> {
    await Promise.all(this.control.cells().map((cell) => this.#ensure(cell.id)));
    this.#unsubscribe = this.control.onChange(() => {
      for (const cell of this.control.cells()) {
        if (!this.#runtimes.has(cell.id)) {
          this.#ensure(cell.id).catch((error: unknown) =>
            this.deps.logger.error({ cell: cell.id, err: coerceError(error).message }, 'cell failed to start'),
          );
        }
      }
    });
  }

  #ensure(cellId: string): Promise<CellRuntime> {
    const running = this.#runtimes.get(cellId);
    if (running) return Promise.resolve(running);
    let starting = this.#starting.get(cellId);
    if (!starting) {
      const cell = this.control.cell(cellId);
      if (!cell) return Promise.reject(new Error(`unknown cell ${cellId}`));
      const runtime = new CellRuntime(cell, this.deps);
      starting = runtime.start().then(() => {
        this.#runtimes.set(cellId, runtime);
        this.#starting.delete(cellId);
        return runtime;
      });
      starting.catch(() => this.#starting.delete(cellId));
      this.#starting.set(cellId, starting);
    }
    return starting;
  }

  /** The runtime of a cell, starting it if the cell was added since. */
  get(cellId: string): Promise<CellRuntime> {
    return this.#ensure(cellId);
  }

  all(): CellRuntime[] {
    return [...this.#runtimes.values()];
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    await Promise.all(this.all().map((r) => r.stop()));
  }
}
