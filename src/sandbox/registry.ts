import type { SandboxService } from './sandbox-model.ts';
import { webhookSandbox } from './webhook/webhook-sandbox.ts';

/** Every provider's stand-in. Add a sandbox service here and nowhere else. */
export const SANDBOX_SERVICES: readonly SandboxService[] = [webhookSandbox];
