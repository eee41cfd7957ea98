import { Type } from 'typebox';
import { NATIVE_BY_FIELD } from '../profiles/native-attributes.ts';
import type { InstallationState, NativeField, ProfileState } from '../profiles/profile-model.ts';
import type { ProfileDetail, StoredEvent } from '../storage/cell-store.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** Response schemas: they document the API and drive its serializer. */
export const EventView = Type.Object({
  name: Type.String(),
  time: Type.String({ description: 'ISO 8601, UTC' }),
  id: Type.Union([Type.String(), Type.Null()]),
  attributes: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  received_at: Type.String(),
});

export const InstallationView = Type.Object({
  install_id: Type.String(),
  platform: Type.String(),
  push_token: Type.Union([Type.String(), Type.Null()]),
  web_push: Type.Union([Type.Unknown(), Type.Null()]),
  push_enabled: Type.Boolean(),
  app_version: Type.Union([Type.String(), Type.Null()]),
  last_seen_at: Type.String(),
  created_at: Type.String(),
});

export const ProfileView = Type.Object({
  custom_id: Type.String(),
  attributes: Type.Record(Type.String(), Type.Unknown(), {
    description: 'Native attributes under their $ names, then custom attributes.',
  }),
  installations: Type.Array(InstallationView),
  events: Type.Array(EventView, { description: 'Most recent first; see /events for more.' }),
  event_counts: Type.Record(Type.String(), Type.Integer(), { description: 'Event name → how many times.' }),
  created_at: Type.String(),
  updated_at: Type.String(),
  consistency: Type.Optional(
    Type.Object({
      wait_for: Type.String(),
      applied: Type.Boolean({ description: 'false if the wait timed out: the profile may not show that write yet.' }),
    }),
  ),
});

export const EventPageView = Type.Object({
  events: Type.Array(EventView),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export function eventView(e: StoredEvent) {
  return { name: e.name, time: iso(e.timeMs), id: e.clientId, attributes: e.attributes, received_at: iso(e.receivedAt) };
}

export function installationView(i: InstallationState) {
  return {
    install_id: i.installId,
    platform: i.platform,
    push_token: i.pushToken,
    web_push: i.webPush,
    push_enabled: i.pushEnabled,
    app_version: i.appVersion,
    last_seen_at: iso(i.lastSeenAt),
    created_at: iso(i.createdAt),
  };
}

export function attributesView(profile: ProfileState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(profile.natives) as [NativeField, string | null][]) {
    if (value !== null) out[NATIVE_BY_FIELD.get(field)!.name] = value;
  }
  return Object.assign(out, profile.attributes);
}

export function profileView(detail: ProfileDetail) {
  return {
    custom_id: detail.profile.customId,
    attributes: attributesView(detail.profile),
    installations: detail.installations.map(installationView),
    events: detail.events.map(eventView),
    event_counts: Object.fromEntries(detail.eventCounts.map((c) => [c.name, c.count])),
    created_at: iso(detail.profile.createdAt),
    updated_at: iso(detail.profile.updatedAt),
  };
}

export function encodeCursor(next: { timeMs: number; id: number }): string {
  return Buffer.from(`${next.timeMs}:${next.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { timeMs: number; id: number } | null {
  const m = /^(-?\d+):(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { timeMs: Number(m[1]), id: Number(m[2]) } : null;
}
