import type { Channel } from '../delivery-model.ts';
import type { ProviderDefinition } from '../provider.ts';
import type { Platform } from '../../profiles/profile-model.ts';
import { apnsProvider } from './apns/apns-provider.ts';
import { fcmProvider } from './fcm/fcm-provider.ts';
import { smtpProvider } from './smtp/smtp-provider.ts';
import { smsProvider } from './sms/sms-provider.ts';
import { webhookProvider } from './webhook/webhook-provider.ts';
import { webpushProvider } from './webpush/webpush-provider.ts';

/** Every provider kind. Add a provider here and nowhere else; the API, CLI and dispatcher list this. */
export const PROVIDERS: readonly ProviderDefinition<unknown>[] = [
  apnsProvider,
  fcmProvider,
  webpushProvider,
  smtpProvider,
  smsProvider,
  webhookProvider,
];

export function providerKind(kind: string): ProviderDefinition<unknown> | undefined {
  return PROVIDERS.find((p) => p.kind === kind);
}

/** The provider kinds that deliver on a channel (and, for push, a platform). */
export function providersFor(channel: Channel, platform?: Platform | null): ProviderDefinition<unknown>[] {
  return PROVIDERS.filter((p) => p.channel === channel && (!platform || !p.platforms || p.platforms.includes(platform)));
}
