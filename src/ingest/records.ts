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

/**
 * A change to a custom audience's members (issue 4). `add` and `remove` change the live set;
 * `stage` writes rows under a staging `version` (allocated by the control plane, never the live
 * one) that nobody reads; `commit` stages its own members too, then applies the staged rows in
 * one store transaction — `replace` makes them the live set, `add`/`remove` merge them into it —
 * so readers see all of an upload or none of it. `discard` drops an abandoned staging version;
 * `delete` drops the audience's rows.
 */
export interface AudienceMembersRecord {
  kind: 'audience.members';
  project_id: string;
  audience_id: string;
  op: 'add' | 'remove' | 'stage' | 'commit' | 'discard' | 'delete';
  version?: number;
  mode?: 'add' | 'remove' | 'replace';
  custom_ids?: string[];
  install_ids?: string[];
  received_at: number;
}

const AUDIENCE_OPS = new Set(['add', 'remove', 'stage', 'commit', 'discard', 'delete']);
const STAGED_OPS = new Set(['stage', 'commit', 'discard']);
const COMMIT_MODES = new Set(['add', 'remove', 'replace']);

export type IngestRecord =
  | ProfileUpdateRecord
  | InstallationRecord
  | ProfileDeleteRecord
  | SendRecord
  | EngagementRecord
  | AudienceMembersRecord;

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
    case 'audience.members':
      checkAudienceMembers(value);
      return value as unknown as AudienceMembersRecord;
    default:
      throw new RecordDecodeError(`unknown record kind ${JSON.stringify(kind)}`);
  }
}

function checkAudienceMembers(value: Record<string, unknown>): void {
  const { audience_id: audienceId, op, version, mode } = value;
  if (typeof audienceId !== 'string' || typeof op !== 'string' || !AUDIENCE_OPS.has(op)) {
    throw new RecordDecodeError('audience.members lacks audience_id or a known op');
  }
  if (STAGED_OPS.has(op) && !(typeof version === 'number' && Number.isInteger(version) && version > 0)) {
    throw new RecordDecodeError(`audience.members ${op} lacks a staging version`);
  }
  if (op === 'commit' && !(typeof mode === 'string' && COMMIT_MODES.has(mode))) throw new RecordDecodeError('audience.members commit lacks a mode');
  for (const list of [value.custom_ids, value.install_ids]) {
    if (list !== undefined && !(Array.isArray(list) && list.every((m) => typeof m === 'string'))) {
      throw new RecordDecodeError('audience.members has malformed member lists');
    }
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
