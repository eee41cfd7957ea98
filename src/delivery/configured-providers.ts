import type { ControlPlane } from '../control/control-plane.ts';
import type { ProviderLimitOverrides } from '../control/control-store.ts';
import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Platform } from '../profiles/profile-model.ts';
import type { Channel } from './delivery-model.ts';
import type { ProviderResolver, ResolvedProvider } from './dispatcher.ts';
import type { ProviderClient, ProviderContext, ProviderLimits } from './provider.ts';
import { providersFor } from './providers/registry.ts';

/** A provider's documented defaults with a project's own rate and concurrency, where it set them. */
export function effectiveLimits(defaults: ProviderLimits, overrides: ProviderLimitOverrides | null): ProviderLimits {
  return {
    ratePerSecond: overrides?.ratePerSecond ?? defaults.ratePerSecond,
    maxConcurrency: overrides?.maxConcurrency ?? defaults.maxConcurrency,
  };
}

/**
 * The providers projects configured, as live clients: created on first use from the sealed
 * credentials, rebuilt when a configuration changes (its `updatedAt` is part of the version), and
 * closed when no longer current.
 */
export class ConfiguredProviders implements ProviderResolver {
  readonly #clients = new Map<string, ProviderClient>();

  constructor(
    private readonly control: ControlPlane,
    private readonly context: ProviderContext,
    private readonly logger: Logger,
  ) {}

  resolve(projectId: string, channel: Channel, platform: Platform | null): ResolvedProvider | { code: string; reason: string } {
    const configured = this.control.providers(projectId);
    for (const definition of providersFor(channel, platform)) {
      const record = configured.find((p) => p.kind === definition.kind);
      if (!record) continue;
      if (record.disabledReason) {
        return { code: 'PROVIDER_DISABLED', reason: `the ${definition.kind} provider was disabled: ${record.disabledReason}` };
      }
      const version = `${projectId}/${definition.kind}/${record.updatedAt}`;
      const limits = effectiveLimits(definition.limits, record.limits);
      let client = this.#clients.get(version);
      if (!client) {
        try {
          client = definition.create(this.control.openCredentials(record), this.context, limits);
        } catch (error) {
          return { code: 'PROVIDER_UNAVAILABLE', reason: `the ${definition.kind} provider cannot start: ${coerceError(error).message}` };
        }
        this.#clients.set(version, client);
      }
      return { kind: definition.kind, client, limits, version: String(record.updatedAt) };
    }
    const what = channel === 'push' && platform ? `${platform} push` : channel;
    return { code: 'PROVIDER_NOT_CONFIGURED', reason: `no ${what} provider is configured for this project` };
  }

  async refresh(): Promise<void> {
    await this.control.refresh();
  }

  disable(projectId: string, kind: string, reason: string): Promise<void> {
    return this.control.disableProvider(projectId, kind, reason);
  }

  /** Closes clients whose configuration changed or went away (call after a control-plane change). */
  async prune(): Promise<void> {
    const current = new Set<string>();
    for (const project of this.control.projects()) {
      for (const p of this.control.providers(project.id)) current.add(`${p.projectId}/${p.kind}/${p.updatedAt}`);
    }
    for (const [version, client] of this.#clients) {
      if (current.has(version)) continue;
      this.#clients.delete(version);
      await client.close().catch((error: unknown) => this.logger.warn({ err: coerceError(error).message }, 'closing a provider client failed'));
    }
  }

  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}
