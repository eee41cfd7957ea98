import type { AttributePatch, Platform, WebPushSubscription } from '../profiles/profile-model.ts';

/**
 * What the ingest log holds: one record per profile or installation write, as JSON text. The
 * names are spelled out so that a quarantined payload reads plainly. A shipped record kind never
 * changes shape; a new shape gets a new kind, so that replaying an old log always works.
 */
export interface EventRecord {
  name: string;
  time_ms: number;
  id?: string;
  attributes?: Record<string, unknown>;
}

export interface ProfileUpdateRecord {
  kind: 'profile.update';
  project_id: string;
  custom_id: string;
  attributes?: AttributePatch;
  events?: EventRecord[];
  received_at: number;
}

export interface InstallationRecord {
  kind: 'installation.upsert';
  project_id: string;
  install_id: string;
  custom_id?: string;
  platform: Platform;
  push_token?: string | null;
  web_push?: WebPushSubscription | null;
  push_enabled?: boolean;
  app_version?: string | null;
  received_at: number;
}

export interface ProfileDeleteRecord {
  kind: 'profile.delete';
  project_id: string;
  custom_id: string;
  received_at: number;
}

/**
 * A send asked for through the API, materialised into outbox messages by the applier (so that
 * the request is durable before 201, and each recipient gets its message once, I1 and I4). The
 * template's content is copied in, so a replay renders exactly what was asked.
 */
export interface SendRecord {
  kind: 'send.request';
  project_id: string;
  send_id: string;
  channel: 'push' | 'email' | 'sms' | 'webhook';
  category: 'transactional' | 'marketing';
  priority: 'high' | 'normal';
  ttl_seconds?: number;
  recipients: { custom_ids?: string[]; install_ids?: string[]; emails?: string[]; phone_numbers?: string[] };
  /** Language → content template ("default" always present). */
  variants: Record<string, Record<string, unknown>>;
  template_id?: string;
  data?: Record<string, unknown>;
  received_at: number;
}

/** A recipient opened or clicked a message (reported by an SDK or the app's own tracking). */
export interface EngagementRecord {
  kind: 'message.engagement';
  project_id: string;
  message_id: string;
  type: 'opened' | 'clicked';
  time_ms: number;
  received_at: number;
}

export type IngestRecord = ProfileUpdateRecord | InstallationRecord | ProfileDeleteRecord | SendRecord | EngagementRecord;

export class RecordDecodeError extends Error {
  override name = 'RecordDecodeError';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses one log payload; a payload that cannot be understood throws RecordDecodeError. */
export function decodeRecord(payload: string): IngestRecord {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    throw new RecordDecodeError('payload is not valid JSON');
  }
  if (!isObject(value)) throw new RecordDecodeError('payload is not an object');
  const { kind, project_id: projectId, received_at: receivedAt } = value;
  if (typeof projectId !== 'string' || typeof receivedAt !== 'number') {
    throw new RecordDecodeError('payload lacks project_id or received_at');
  }
  switch (kind) {
    case 'profile.update':
    case 'profile.delete':
      if (typeof value.custom_id !== 'string') throw new RecordDecodeError(`${kind} lacks custom_id`);
      if (kind === 'profile.update') checkProfileUpdate(value);
      return value as unknown as IngestRecord;
    case 'installation.upsert':
      if (typeof value.install_id !== 'string' || typeof value.platform !== 'string') {
        throw new RecordDecodeError('installation.upsert lacks install_id or platform');
      }
      return value as unknown as InstallationRecord;
    case 'send.request':
      if (typeof value.send_id !== 'string' || !isObject(value.recipients) || !isObject(value.variants) || !isObject(value.variants.default)) {
        throw new RecordDecodeError('send.request lacks send_id, recipients or a default variant');
      }
      return value as unknown as SendRecord;
    case 'message.engagement':
      if (typeof value.message_id !== 'string' || (value.type !== 'opened' && value.type !== 'clicked') || typeof value.time_ms !== 'number') {
        throw new RecordDecodeError('message.engagement lacks message_id, type or time_ms');
      }
      return value as unknown as EngagementRecord;
    default:
      throw new RecordDecodeError(`unknown record kind ${JSON.stringify(kind)}`);
  }
}

function checkProfileUpdate(value: Record<string, unknown>): void {
  const { attributes, events } = value;
  if (attributes !== undefined && !(isObject(attributes) && isObject(attributes.natives) && isObject(attributes.custom))) {
    throw new RecordDecodeError('profile.update has malformed attributes');
  }
  if (events !== undefined) {
    if (!Array.isArray(events)) throw new RecordDecodeError('profile.update has malformed events');
    for (const e of events) {
      if (!isObject(e) || typeof e.name !== 'string' || typeof e.time_ms !== 'number') {
        throw new RecordDecodeError('profile.update has a malformed event');
      }
    }
  }
}

export function encodeRecord(record: IngestRecord): string {
  return JSON.stringify(record);
}
