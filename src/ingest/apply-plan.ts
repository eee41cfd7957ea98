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
import { materializeSend, type SendLookups } from '../delivery/send-planner.ts';
import { TemplateEngine } from '../delivery/templates/template-engine.ts';

export interface PlannedRecord {
  seq: number;
  record: IngestRecord;
}

interface ProfileSlot {
  key: ProfileKey;
  keyString: string;
  /** Some record needs the stored attributes (not only the id). */
  full: boolean;
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
 * Store ids of profiles known to exist, so that records which only add events (or link an
 * installation) need no profile lookup. Safe because the applier is the only writer of profiles:
 * it forgets a profile when it erases it, and the whole cache is dropped whenever another applier
 * may have written (an offset conflict) or a batch failed. Bounded: forgetting costs one lookup.
 */
export class ProfileIdCache {
  readonly #ids = new Map<string, number>();
  constructor(private readonly limit = 500_000) {}
  get(key: string): number | undefined {
    return this.#ids.get(key);
  }
  set(key: string, id: number): void {
    if (this.#ids.size >= this.limit && !this.#ids.has(key)) this.#ids.clear();
    this.#ids.set(key, id);
  }
  forget(key: string): void {
    this.#ids.delete(key);
  }
  clear(): void {
    this.#ids.clear();
  }
  /** Remembers the ids of the profiles a committed batch wrote or referenced (the store filled in new ids). */
  absorb(effects: BatchEffects): void {
    for (const p of effects.profiles) if (p.id !== null) this.set(profileKeyString(p.projectId, p.customId), p.id);
    for (const k of effects.knownProfiles) this.set(profileKeyString(k.projectId, k.customId), k.id);
  }
}

export interface PlanContext {
  catalog: CatalogCache;
  ids?: ProfileIdCache;
  /** Renders the templates of sends (one per applier, so parsed templates are cached). */
  engine?: TemplateEngine;
}

let sharedEngine: TemplateEngine | undefined;
function defaultEngine(): TemplateEngine {
  sharedEngine ??= new TemplateEngine();
  return sharedEngine;
}

/**
 * What a send sees, as of its place in the batch: profiles and installations as the records before
 * it left them (read-your-writes through the log), the rest from the store.
 */
function sendLookups(
  tx: ApplyTx,
  projectId: string,
  slots: Map<string, ProfileSlot>,
  installs: Map<string, InstallationState>,
  erased: Set<string>,
): SendLookups {
  return {
    profile: (customId) => slots.get(profileKeyString(projectId, customId))?.state ?? null,
    installation: (installId) => installs.get(installationKeyString(projectId, installId)) ?? null,
    async installationsOf(customIds) {
      const keys = customIds.map((customId) => ({ projectId, customId }));
      const stored = await tx.loadInstallationsOf(keys.filter((k) => !erased.has(profileKeyString(projectId, k.customId))));
      const out = new Map<string, InstallationState[]>();
      for (const customId of customIds) {
        const byId = new Map<string, InstallationState>();
        for (const i of stored.get(profileKeyString(projectId, customId)) ?? []) byId.set(i.installId, i);
        out.set(customId, [...byId.values()]);
      }
      // The batch's own installation changes win over what is stored.
      for (const i of installs.values()) {
        if (i.projectId !== projectId) continue;
        for (const [customId, list] of out) {
          const rest = list.filter((x) => x.installId !== i.installId);
          out.set(customId, i.customId === customId ? [...rest, i] : rest);
        }
      }
      return out;
    },
    suppressed: (channel, addresses) => tx.loadSuppressed(projectId, channel, addresses),
  };
}

/**
 * The applier's reducer: replays a batch of log records, in order, over the current state of the
 * profiles and installations they touch, and returns the effects for the store to write in the
 * same transaction that moves the log offset. Erasure in the middle of a batch discards what came
 * before it for that profile, as if the records had been applied one by one.
 */
export async function planBatch(tx: ApplyTx, records: readonly PlannedRecord[], context: PlanContext | CatalogCache): Promise<BatchEffects> {
  const { catalog, ids, engine } =
    context instanceof CatalogCache ? { catalog: context, ids: undefined, engine: defaultEngine() } : { engine: defaultEngine(), ...context };
  // Installations first: their stored links name profiles this batch must know too.
  const installKeys = new Map<string, InstallationKey>();
  const addInstallKey = (projectId: string, installId: string): void => {
    const k = installationKeyString(projectId, installId);
    if (!installKeys.has(k)) installKeys.set(k, { projectId, installId });
  };
  for (const { record: r } of records) {
    if (r.kind === 'installation.upsert') addInstallKey(r.project_id, r.install_id);
    if (r.kind === 'send.request') for (const id of r.recipients.install_ids ?? []) addInstallKey(r.project_id, id);
  }
  const installs = installKeys.size > 0 ? await tx.loadInstallations([...installKeys.values()]) : new Map<string, InstallationState>();

  // One slot per profile; `full` when some record needs its stored attributes, not only its id.
  const slots = new Map<string, ProfileSlot>();
  const recordSlots: (ProfileSlot | undefined)[] = [];
  const slotFor = (projectId: string, customId: string, full: boolean): ProfileSlot => {
    const k = profileKeyString(projectId, customId);
    let slot = slots.get(k);
    if (!slot) {
      slot = { key: { projectId, customId }, keyString: k, state: null, touched: false, events: [], full };
      slots.set(k, slot);
    } else if (full) slot.full = true;
    return slot;
  };
  const sendInstalls = new Set<string>();
  for (const { record: r } of records) {
    if (r.kind === 'installation.upsert') {
      recordSlots.push(r.custom_id === undefined ? undefined : slotFor(r.project_id, r.custom_id, false));
    } else if (r.kind === 'message.engagement') {
      recordSlots.push(undefined);
    } else if (r.kind === 'send.request') {
      // A send renders its templates with each recipient's profile: load them whole.
      for (const customId of r.recipients.custom_ids ?? []) slotFor(r.project_id, customId, true);
      for (const id of r.recipients.install_ids ?? []) sendInstalls.add(installationKeyString(r.project_id, id));
      recordSlots.push(undefined);
    } else if (r.kind === 'audience.members') {
      recordSlots.push(undefined); // members are stored by id as given: no profile is read or made
    } else {
      recordSlots.push(slotFor(r.project_id, r.custom_id, r.kind === 'profile.delete' || r.attributes !== undefined));
    }
  }
  for (const [k, i] of installs) if (i.customId !== null) slotFor(i.projectId, i.customId, sendInstalls.has(k));

  const toLoad: ProfileKey[] = [];
  for (const slot of slots.values()) {
    const cachedId = slot.full ? undefined : ids?.get(slot.keyString);
    if (cachedId === undefined) toLoad.push(slot.key);
    else {
      slot.state = newProfile(slot.key, 0); // id only: an untouched slot is never rewritten
      slot.state.id = cachedId;
    }
  }
  const loaded = toLoad.length > 0 ? await tx.loadProfiles(toLoad) : new Map<string, ProfileState>();
  for (const key of toLoad) {
    const k = profileKeyString(key.projectId, key.customId);
    slots.get(k)!.state = loaded.get(k) ?? null;
  }

  const effects = emptyEffects();
  const loadedInstalls = new Set(installs.keys());
  const touchedInstalls = new Set<string>();
  const ensure = (s: ProfileSlot, nowMs: number): ProfileState => {
    if (!s.state) {
      s.state = newProfile(s.key, nowMs);
      s.touched = true;
    }
    return s.state;
  };

  const erased = new Set<string>();
  for (let i = 0; i < records.length; i++) {
    const { record } = records[i]!;
    const s = recordSlots[i];
    switch (record.kind) {
      case 'profile.update':
        applyUpdate(s!, record, ensure, effects.catalog, catalog);
        break;
      case 'profile.delete': {
        if (s!.state?.id != null) effects.deletedProfileIds.push(s!.state.id);
        ids?.forget(s!.keyString);
        erased.add(s!.keyString);
        s!.state = null;
        s!.touched = false;
        s!.events = [];
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
        if (next.customId !== null) ensure(slotFor(next.projectId, next.customId, false), record.received_at);
        installs.set(ik, next);
        touchedInstalls.add(ik);
        break;
      }
      case 'message.engagement':
        effects.engagements.push({ projectId: record.project_id, messageId: record.message_id, type: record.type, atMs: record.time_ms });
        break;
      case 'send.request': {
        const lookups = sendLookups(tx, record.project_id, slots, installs, erased);
        const { send, messages } = await materializeSend(record, lookups, engine);
        effects.sends.push(send);
        effects.messages.push(...messages);
        break;
      }
      case 'audience.members':
        effects.audiences.push({
          projectId: record.project_id,
          audienceId: record.audience_id,
          op: record.op,
          version: record.version ?? null,
          mode: record.mode ?? null,
          customIds: record.custom_ids ?? [],
          installIds: record.install_ids ?? [],
          atMs: record.received_at,
        });
        break;
    }
  }

  for (const s of slots.values()) {
    if (s.state && s.touched) effects.profiles.push(s.state);
    else if (s.state?.id != null) effects.knownProfiles.push({ projectId: s.key.projectId, customId: s.key.customId, id: s.state.id });
    for (const e of s.events) effects.events.push(e);
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
  if (record.attributes) {
    // Only attribute changes rewrite the profile row; events alone leave it (and updated_at) as is.
    s.touched = true;
    applyAttributePatch(profile, record.attributes, record.received_at);
    for (const [name, value] of Object.entries(record.attributes.custom)) {
      if (value === null) continue;
      const type = isArrayOperation(value) ? 'array' : inferAttributeType(value);
      const entry: CatalogEntry = { projectId: record.project_id, kind: 'attribute', name, type };
      if (catalog.take(entry)) catalogOut.push(entry);
    }
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
        pushDisabledReason: null,
        appVersion: null,
        lastSeenAt: r.received_at,
        createdAt: r.received_at,
        updatedAt: r.received_at,
      };
  next.platform = r.platform;
  if (r.custom_id !== undefined) next.customId = r.custom_id;
  // A new token or subscription is a fresh chance: whatever the provider refused before no longer applies.
  if (r.push_token !== undefined && r.push_token !== next.pushToken) next.pushDisabledReason = null;
  if (r.web_push !== undefined && r.web_push?.endpoint !== next.webPush?.endpoint) next.pushDisabledReason = null;
  if (r.push_token !== undefined) next.pushToken = r.push_token;
  if (r.web_push !== undefined) next.webPush = r.web_push;
  if (r.push_enabled !== undefined) next.pushEnabled = r.push_enabled;
  if (r.app_version !== undefined) next.appVersion = r.app_version;
  next.lastSeenAt = Math.max(next.lastSeenAt, r.received_at);
  next.updatedAt = Math.max(next.updatedAt, r.received_at);
  return next;
}
