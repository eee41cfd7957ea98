/** The profile, installation and event model that the applier builds and the store persists. */

export type Consent = 'subscribed' | 'unsubscribed';
export type Platform = 'ios' | 'android' | 'web';

/** A custom attribute value as stored: dates and URLs are strings, arrays hold strings. */
export type AttributeValue = string | number | boolean | string[];
export type AttributeType = 'string' | 'number' | 'boolean' | 'date' | 'url' | 'array';

/** What a request may set a custom attribute to: a value, an array operation, or null (delete). */
export type AttributePatchValue = AttributeValue | null | { $add?: string[]; $remove?: string[] };

export interface ProfileNatives {
  email: string | null;
  emailMarketing: Consent | null;
  phone: string | null;
  smsMarketing: Consent | null;
  language: string | null;
  region: string | null;
  timezone: string | null;
}

export type NativeField = keyof ProfileNatives;

/** A validated, normalised attribute patch: natives by field, custom attributes by name. */
export interface AttributePatch {
  natives: Partial<ProfileNatives>;
  custom: Record<string, AttributePatchValue>;
}

export interface ProfileKey {
  projectId: string;
  customId: string;
}

export interface ProfileState extends ProfileKey {
  /** Store row id, or null for a profile this batch creates. */
  id: number | null;
  natives: ProfileNatives;
  attributes: Record<string, AttributeValue>;
  createdAt: number;
  updatedAt: number;
}

export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface InstallationKey {
  projectId: string;
  installId: string;
}

export interface InstallationState extends InstallationKey {
  /** custom_id of the linked profile, if any. */
  customId: string | null;
  platform: Platform;
  pushToken: string | null;
  webPush: WebPushSubscription | null;
  pushEnabled: boolean;
  /** Why the provider refused this installation's token or subscription (it is skipped until a new one arrives). */
  pushDisabledReason: string | null;
  appVersion: string | null;
  lastSeenAt: number;
  createdAt: number;
  updatedAt: number;
}

export interface EventWrite extends ProfileKey {
  name: string;
  timeMs: number;
  clientId: string | null;
  attributes: Record<string, unknown> | null;
  receivedAt: number;
}

export const MAX_ARRAY_ITEMS = 100;

export function emptyNatives(): ProfileNatives {
  return {
    email: null,
    emailMarketing: null,
    phone: null,
    smsMarketing: null,
    language: null,
    region: null,
    timezone: null,
  };
}

export function newProfile(key: ProfileKey, nowMs: number): ProfileState {
  // Spelled out (no spread): this runs once per new profile on the applier's hot path.
  return {
    projectId: key.projectId,
    customId: key.customId,
    id: null,
    natives: emptyNatives(),
    attributes: {},
    createdAt: nowMs,
    updatedAt: nowMs,
  };
}

/**
 * Applies a validated patch to a profile in place. `$remove` runs before `$add`; an array that
 * outgrows MAX_ARRAY_ITEMS drops its oldest items (the patch was already acknowledged, so it
 * cannot be refused here).
 */
export function applyAttributePatch(profile: ProfileState, patch: AttributePatch, nowMs: number): void {
  for (const [field, value] of Object.entries(patch.natives) as [NativeField, string | null][]) {
    (profile.natives as unknown as Record<NativeField, string | null>)[field] = value;
  }
  for (const [name, value] of Object.entries(patch.custom)) {
    if (value === null) {
      delete profile.attributes[name];
    } else if (isArrayOperation(value)) {
      const current = profile.attributes[name];
      let items = Array.isArray(current) ? [...current] : [];
      if (value.$remove) {
        const remove = new Set(value.$remove);
        items = items.filter((item) => !remove.has(item));
      }
      for (const item of value.$add ?? []) if (!items.includes(item)) items.push(item);
      profile.attributes[name] = items.length > MAX_ARRAY_ITEMS ? items.slice(-MAX_ARRAY_ITEMS) : items;
    } else {
      profile.attributes[name] = value;
    }
  }
  profile.updatedAt = Math.max(profile.updatedAt, nowMs);
}

export function isArrayOperation(value: AttributePatchValue): value is { $add?: string[]; $remove?: string[] } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function profileKeyString(projectId: string, customId: string): string {
  return `${projectId}\u0000${customId}`;
}

export function installationKeyString(projectId: string, installId: string): string {
  return `${projectId}\u0000${installId}`;
}
