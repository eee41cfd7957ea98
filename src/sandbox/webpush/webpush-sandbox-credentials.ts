import webpush from 'web-push';
import type { WebPushCredentials } from '../../delivery/providers/webpush/webpush-provider.ts';
import type { WebPushSubscription } from '../../profiles/profile-model.ts';
import type { SandboxHandle } from '../sandbox.ts';

/**
 * Credentials for the webpush provider against the sandbox. VAPID needs no registration with a push
 * service (the key travels in every request, RFC 8292 §3), so a fresh key pair is all it takes.
 */
export async function webpushSandboxCredentials(
  _sandbox: Pick<SandboxHandle, 'trust'>,
): Promise<WebPushCredentials> {
  const keys = webpush.generateVAPIDKeys();
  return {
    vapid_public_key: keys.publicKey,
    vapid_private_key: keys.privateKey,
    subject: 'mailto:sandbox@herald.invalid',
  };
}

export interface SandboxSubscribeOptions {
  /** Restrict the subscription to this VAPID public key, as PushManager.subscribe does (RFC 8292 §4). */
  applicationServerKey?: string;
  signal?: AbortSignal;
}

/**
 * Subscribes a fake browser at the sandbox push service (`endpoint` is the stand-in's base URL, i.e.
 * `sandbox.endpoints.webpush`) and returns what a browser's PushSubscription.toJSON() gives.
 */
export async function createSandboxSubscription(
  endpoint: string,
  options: SandboxSubscribeOptions = {},
): Promise<WebPushSubscription> {
  const response = await fetch(`${endpoint.replace(/\/+$/, '')}/subscriptions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(
      options.applicationServerKey ? { applicationServerKey: options.applicationServerKey } : {},
    ),
    signal: options.signal ?? AbortSignal.timeout(10_000),
  });
  if (response.status !== 201)
    throw new Error(
      `the sandbox push service refused to subscribe: ${response.status} ${await response.text()}`,
    );
  const json = (await response.json()) as { endpoint: string; keys: { p256dh: string; auth: string } };
  return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
}
