import type { ControlPlane } from '../control/control-plane.ts';
import type { Clock } from '../core/clock.ts';
import type { CellRuntimes } from '../runtime/cell-runtimes.ts';
import type { ProjectRateLimiter } from './auth.ts';
import type { SandboxHandle } from '../sandbox/sandbox.ts';

/** What the HTTP edge needs, passed in by the composition root. */
export interface ApiDeps {
  control: ControlPlane;
  cells: CellRuntimes;
  limiter: ProjectRateLimiter;
  clock: Clock;
  version: string;
  /** The provider sandbox, when this Herald runs or uses one. */
  sandbox: SandboxHandle | undefined;
  /** Signs and checks one-click unsubscribe links. */
  unsubscribeKey: Buffer;
}
