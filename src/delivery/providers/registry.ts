import type { ProviderDefinition } from '../provider.ts';
import { webhookProvider } from './webhook/webhook-provider.ts';

/** Every provider kind. Add a provider here and nowhere else; the API, CLI and dispatcher list this. */
export const PROVIDERS: readonly ProviderDefinition<unknown>[] = [webhookProvider];

export function providerKind(kind: string): ProviderDefinition<unknown> | undefined {
  return PROVIDERS.find((p) => p.kind === kind);
}
