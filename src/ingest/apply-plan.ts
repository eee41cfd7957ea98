import type { ApplyTx, BatchEffects, CatalogEntry } from '../storage/cell-store.ts';
import { emptyEffects } from '../storage/cell-store.ts';
import { inferAttributeType } from '../profiles/attribute-types.ts';
import type {
  EventWrite,
  InstallationKey,
  InstallationState,
  ProfileKey,
  ProfileState,
} from '../profiles/profile-model.ts';
import {
  applyAttributePatch,
  installationKeyString,
  isArrayOperation,
  newProfile,
  profileKeyString,
} from '../profiles/profile-model.ts';
import type { IngestRecord, InstallationRecord, ProfileUpdateRecord } from './records.ts';

export interface PlannedRecord {
  seq: number;
  record: IngestRecord;
}

interface ProfileSlot {
  key: ProfileKey;
  /** Current state, or null when absent or erased by this batch. */
  state: ProfileState | null;
  touched: boolean;
  events: EventWrite[];
}

/**
 * Remembers which catalog entries (attribute types, event names) are already stored, so that a
 * batch only writes new ones. Bounded: forgetting costs one ignored insert.
 */
export class CatalogCache {
  readonly #seen = new Set<string>();
  constructor(private readonly limit = 100_000) {}
  take(entry: CatalogEntry): boolean {
    const key = `${entry.projectId}\u0000${entry.kind}\u0000${entry.name}\u0000${entry.type}`;
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= this.limit) this.#seen.clear();
    this.#seen.add(key);
    return true;
  }
}

/**
 * The applier's reducer: replays a batch of log records, in order, over the current state of the
 * profiles and installations they touch, and returns the effects for the store to write in the
 * same transaction that moves the log offset. Erasure in the middle of a batch discards what came
 * before it for that profile, as if the records had been applied one by one.
 */
export async function planBatch(tx: ApplyTx, records: readonly PlannedRecord[], catalog: CatalogCache): Promise<BatchEffects> {
  const installKeys = uniqueKeys(
    records.flatMap(({ record: r }) =>
      r.kind === 'installation.upsert' ? [{ projectId: r.project_id, installId: r.install_id }] : [],
    ),
    (k: InstallationKey) => installationKeyString(k.projectId, k.installId),
  );
  const installs = await tx.loadInstallations(installKeys);
  const profileKeys = uniqueKeys(
    [
      ...records.flatMap(({ record: r }) =>
        r.kind === 'installation.upsert'
          ? r.custom_id === undefined
            ? []
            : [{ projectId: r.project_id, customId: r.custom_id }]
          : [{ projectId: r.project_id, customId: r.custom_id }],
      ),
      ...[...installs.values()].flatMap((i) => (i.customId === null ? [] : [{ projectId: i.projectId, customId: i.customId }])),
    ],
    (k: ProfileKey) => profileKeyString(k.projectId, k.customId),
  );
  const loaded = await tx.loadProfiles(profileKeys);

  const effects = emptyEffects();
  const slots = new Map<string, ProfileSlot>();
  for (const key of profileKeys) {
    const k = profileKeyString(key.projectId, key.customId);
    const state = loaded.get(k);
    slots.set(k, { key, state: state ?? null, touched: false, events: [] });
  }
  const loadedInstalls = new Set(installs.keys());
  const touchedInstalls = new Set<string>();
  const slot = (projectId: string, customId: string): ProfileSlot => slots.get(profileKeyString(projectId, customId))!;
  const ensure = (s: ProfileSlot, nowMs: number): ProfileState => {
    if (!s.state) {
      s.state = newProfile(s.key, nowMs);
      s.touched = true;
    }
    return s.state;
  };

  for (const { record } of records) {
    switch (record.kind) {
      case 'profile.update':
        applyUpdate(slot(record.project_id, record.custom_id), record, ensure, effects.catalog, catalog);
        break;
      case 'profile.delete': {
        const s = slot(record.project_id, record.custom_id);
        if (s.state?.id != null) effects.deletedProfileIds.push(s.state.id);
        s.state = null;
        s.touched = false;
        s.events = [];
        for (const [ik, install] of installs) {
          if (install.projectId !== record.project_id || install.customId !== record.custom_id) continue;
          installs.delete(ik);
          touchedInstalls.delete(ik);
          if (loadedInstalls.has(ik)) effects.deletedInstallations.push({ projectId: install.projectId, installId: install.installId });
        }
        break;
      }
      case 'installation.upsert': {
        const ik = installationKeyString(record.project_id, record.install_id);
        const next = applyInstallation(installs.get(ik), record);
        if (next.customId !== null) ensure(slot(next.projectId, next.customId), record.received_at);
        installs.set(ik, next);
        touchedInstalls.add(ik);
        break;
      }
    }
  }

  for (const s of slots.values()) {
    if (s.state && s.touched) effects.profiles.push(s.state);
    else if (s.state?.id != null) effects.knownProfiles.push({ ...s.key, id: s.state.id });
    effects.events.push(...s.events);
  }
  for (const ik of touchedInstalls) effects.installations.push(installs.get(ik)!);
  return effects;
}

function applyUpdate(
  s: ProfileSlot,
  record: ProfileUpdateRecord,
  ensure: (s: ProfileSlot, nowMs: number) => ProfileState,
  catalogOut: CatalogEntry[],
  catalog: CatalogCache,
): void {
  const profile = ensure(s, record.received_at);
  s.touched = true;
  if (record.attributes) {
    applyAttributePatch(profile, record.attributes, record.received_at);
    for (const [name, value] of Object.entries(record.attributes.custom)) {
      if (value === null) continue;
      const type = isArrayOperation(value) ? 'array' : inferAttributeType(value);
      const entry: CatalogEntry = { projectId: record.project_id, kind: 'attribute', name, type };
      if (catalog.take(entry)) catalogOut.push(entry);
    }
  } else {
    profile.updatedAt = Math.max(profile.updatedAt, record.received_at);
  }
  for (const event of record.events ?? []) {
    s.events.push({
      projectId: record.project_id,
      customId: record.custom_id,
      name: event.name,
      timeMs: event.time_ms,
      clientId: event.id ?? null,
      attributes: event.attributes ?? null,
      receivedAt: record.received_at,
    });
    const entry: CatalogEntry = { projectId: record.project_id, kind: 'event', name: event.name, type: 'event' };
    if (catalog.take(entry)) catalogOut.push(entry);
  }
}

function applyInstallation(current: InstallationState | undefined, r: InstallationRecord): InstallationState {
  const next: InstallationState = current
    ? { ...current }
    : {
        projectId: r.project_id,
        installId: r.install_id,
        customId: null,
        platform: r.platform,
        pushToken: null,
        webPush: null,
        pushEnabled: false,
        appVersion: null,
        lastSeenAt: r.received_at,
        createdAt: r.received_at,
        updatedAt: r.received_at,
      };
  next.platform = r.platform;
  if (r.custom_id !== undefined) next.customId = r.custom_id;
  if (r.push_token !== undefined) next.pushToken = r.push_token;
  if (r.web_push !== undefined) next.webPush = r.web_push;
  if (r.push_enabled !== undefined) next.pushEnabled = r.push_enabled;
  if (r.app_version !== undefined) next.appVersion = r.app_version;
  next.lastSeenAt = Math.max(next.lastSeenAt, r.received_at);
  next.updatedAt = Math.max(next.updatedAt, r.received_at);
  return next;
}

function uniqueKeys<K>(keys: K[], id: (k: K) => string): K[] {
  const seen = new Map<string, K>();
  for (const k of keys) if (!seen.has(id(k))) seen.set(id(k), k);
  return [...seen.values()];
}
