import type { ProviderLimitOverrides } from '../control/control-store.ts';
import { apnsSandboxCredentials } from './apns/apns-sandbox-credentials.ts';
import { fcmSandboxCredentials } from './fcm/fcm-sandbox-credentials.ts';
import type { SandboxHandle } from './sandbox.ts';
import { smsSandboxCredentials } from './sms/sms-sandbox-credentials.ts';
import { smtpSandboxCredentials } from './smtp/smtp-sandbox-credentials.ts';
import { webpushSandboxCredentials } from './webpush/webpush-sandbox-credentials.ts';
import { newWebhookSecret } from '../delivery/providers/webhook/webhook-provider.ts';

export interface SandboxWiring {
  /** Where unsubscribe links and SMS status callbacks reach this Herald. */
  publicUrl: string;
  /** A path of the sandbox's webhook receiver, unique to the project. */
  webhookPath: string;
  projectId: string;
}

/**
 * For each provider kind: credentials that deliver to the sandbox's stand-in, registering with
 * the sandbox what it must trust. `herald start` gives them to the demo project.
 */
export const SANDBOX_CREDENTIALS: Readonly<Record<string, (sandbox: SandboxHandle, wiring: SandboxWiring) => Promise<unknown>>> = {
  apns: (sandbox) => apnsSandboxCredentials(sandbox),
  fcm: (sandbox) => fcmSandboxCredentials(sandbox),
  webpush: (sandbox) => webpushSandboxCredentials(sandbox),
  smtp: (sandbox) => smtpSandboxCredentials(sandbox),
  sms: (sandbox, wiring) => smsSandboxCredentials(sandbox, { statusCallbackUrl: `${wiring.publicUrl}/v1/callbacks/sms/${wiring.projectId}` }),
  async webhook(sandbox, wiring) {
    const secret = newWebhookSecret();
    await sandbox.trust('webhook', `${sandbox.endpoints.webhook}${wiring.webhookPath}`, { secret });
    return { url: `sandbox:${wiring.webhookPath}`, secret };
  },
};

/**
 * Flow control for the demo project's sandbox providers where it differs from the real providers'
 * documented quotas: the stand-ins run on this machine and have no quota, so email and SMS are not
 * paced at a real relay's 100 messages per second. A project's real providers keep the defaults
 * unless it sets `limits` itself (PUT /v1/providers/{kind}).
 */
export const SANDBOX_LIMITS: Readonly<Record<string, ProviderLimitOverrides>> = {
  smtp: { ratePerSecond: 5_000, maxConcurrency: 20 },
  sms: { ratePerSecond: 2_000 },
};
