import type { SandboxService } from './sandbox-model.ts';
import { apnsSandbox } from './apns/apns-sandbox.ts';
import { fcmSandbox } from './fcm/fcm-sandbox.ts';
import { smtpSandbox } from './smtp/smtp-sandbox.ts';
import { smsSandbox } from './sms/sms-sandbox.ts';
import { webhookSandbox } from './webhook/webhook-sandbox.ts';
import { webpushSandbox } from './webpush/webpush-sandbox.ts';

/**
 * Every provider's stand-in. Add a sandbox service here and nowhere else. The order fixes each
 * stand-in's port when the sandbox has a base port: append, never reorder.
 */
export const SANDBOX_SERVICES: readonly SandboxService[] = [webhookSandbox, fcmSandbox, webpushSandbox, smsSandbox, apnsSandbox, smtpSandbox];
