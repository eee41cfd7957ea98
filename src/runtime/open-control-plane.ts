import type { HeraldConfig } from '../config/config.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { ControlConfigStore, ControlStore } from '../control/control-store.ts';
import { SecretBox } from '../control/secret-box.ts';
import { ControlAudienceStore } from '../control/audience-store.ts';
import { loadMasterKey } from './master-key.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { backendFor } from '../storage/backends.ts';
import { HeraldError } from '../core/errors.ts';

/** The control plane lives in the PostgreSQL database of HERALD_DATABASE_URL, or in control.db. */
export function controlUrl(config: HeraldConfig): string {
  return config.databaseUrl ?? 'sqlite:control.db';
}

/** Opens (creating and migrating as needed) the control plane that `config` points at. */
export async function openControlPlane(
  config: HeraldConfig,
  deps: { clock: Clock; logger: Logger },
  options: { create?: boolean } = {},
): Promise<ControlPlane> {
  const url = controlUrl(config);
  const backend = backendFor(url);
  const create = options.create ?? true;
  let opened;
  try {
    opened = await backend.openControl(url, { dataDir: config.dataDir, create });
  } catch (error) {
    if (!create) {
      throw new HeraldError('CONFIG_INVALID', {
        message: `No Herald data at ${config.databaseUrl ? backend.redact(url) : config.dataDir}. Run \`herald start\` first, or pass the right --data-dir / --database-url.`,
        cause: error,
      });
    }
    throw error;
  }
  const { db, migrationLock } = opened;
  const store = new ControlStore(db, migrationLock);
  try {
    const secrets = new SecretBox(loadMasterKey(config, { create }));
    return await ControlPlane.open({
      store,
      config: new ControlConfigStore(store, db),
      audiences: new ControlAudienceStore(store, db),
      secrets,
      url,
      cellUrls: (cellId) => backend.cellUrls(url, cellId),
      ...deps,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
}
