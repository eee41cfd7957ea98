import type {
  EventWrite,
  InstallationKey,
  InstallationState,
  ProfileKey,
  ProfileState,
} from '../profiles/profile-model.ts';
import type { MigrationResult } from './migrations.ts';
import type { NewMessage, OutboxStore, SendRow } from './outbox-port.ts';
import type { Segment } from '../targeting/segment-model.ts';
import type { ProfileFacts } from '../targeting/evaluate-profile.ts';
import type { MatchedProfile, SegmentEstimate, TargetingOptions } from '../targeting/targeting-reads.ts';
import type { TargetingDialect } from '../targeting/sql-dialects.ts';
import type { SqlCampaignStore } from './sql-campaigns.ts';

/** What a backend can do; domain code asks these, never a backend's name. */
export interface StoreCapabilities {
  /** Work can be claimed with FOR UPDATE SKIP LOCKED. */
  readonly skipLocked: boolean;
  /** Several processes may write at once without serialising on a file lock. */
  readonly concurrentWriters: boolean;
  /** Calls block the calling thread; heavy work must run off the event loop. */
  readonly blocking: boolean;
}

/** Reads the applier's plan needs, inside the apply transaction. Keys use `profileKeyString`. */
export interface ApplyTx {
  loadProfiles(keys: readonly ProfileKey[]): Promise<Map<string, ProfileState>>;
  loadInstallations(keys: readonly InstallationKey[]): Promise<Map<string, InstallationState>>;
  /** The installations linked to each of these profiles, keyed by `profileKeyString`. */
  loadInstallationsOf(keys: readonly ProfileKey[]): Promise<Map<string, InstallationState[]>>;
  /** Which of these addresses are suppressed on a channel, with the reason. */
  loadSuppressed(projectId: string, channel: string, addresses: readonly string[]): Promise<Map<string, string>>;
}

export interface CatalogEntry {
  projectId: string;
  kind: 'attribute' | 'event';
  name: string;
  type: string;
}

export interface QuarantineWrite {
  seq: number;
  projectId: string | null;
  payload: string;
  reason: string;
  attempts: number;
}

/** Everything one batch of log records does to the store, computed by the applier's plan. */
export interface BatchEffects {
  /** Store ids of profiles erased by this batch (their events, counts and installations go too). */
  deletedProfileIds: number[];
  /** Installations erased with their profile. */
  deletedInstallations: InstallationKey[];
  /** Final state of every profile the batch touched and did not leave erased. */
  profiles: ProfileState[];
  /** Store ids of profiles the batch references (installation links) without changing them. */
  knownProfiles: { projectId: string; customId: string; id: number }[];
  installations: InstallationState[];
  events: EventWrite[];
  catalog: CatalogEntry[];
  quarantined: QuarantineWrite[];
  /** Sends materialised by this batch and their messages (inserted once per idempotency key, I4). */
  sends: SendRow[];
  messages: NewMessage[];
  /** Opens and clicks to record on messages (the earliest of each is kept). */
  engagements: Engagement[];
  /** Audience member changes, in log order (an add then a remove of the same member must stay in that order). */
  audiences: AudienceWrite[];
}

export interface Engagement {
  projectId: string;
  messageId: string;
  type: 'opened' | 'clicked';
  atMs: number;
}

export type AudienceMemberKind = 'custom_id' | 'install_id';

/** One `audience.members` record for the store to write; see AudienceMembersRecord for the ops. */
export interface AudienceWrite {
  projectId: string;
  audienceId: string;
  op: 'add' | 'remove' | 'stage' | 'commit' | 'discard' | 'delete';
  /** The staging version of stage, commit and discard. */
  version: number | null;
  mode: 'add' | 'remove' | 'replace' | null;
  customIds: string[];
  installIds: string[];
  atMs: number;
}

/** An audience's live version and how many members it has (audience_versions). */
export interface AudienceState {
  audienceId: string;
  liveVersion: number;
  memberCount: number;
  updatedAt: number;
}

export interface AudienceMember {
  kind: AudienceMemberKind;
  member: string;
}

export interface ApplyStats {
  profilesWritten: number;
  installationsWritten: number;
  eventsInserted: number;
  eventsDeduplicated: number;
  profilesDeleted: number;
  quarantined: number;
}

export interface StoredEvent {
  id: number;
  name: string;
  timeMs: number;
  clientId: string | null;
  attributes: Record<string, unknown> | null;
  receivedAt: number;
}

export interface EventCount {
  name: string;
  count: number;
  firstAt: number;
  lastAt: number;
}

export interface ProfileDetail {
  profile: ProfileState;
  installations: InstallationState[];
  events: StoredEvent[];
  eventCounts: EventCount[];
}

export interface EventPage {
  events: StoredEvent[];
  /** Pass back as `before` for the next (older) page; null at the end. */
  next: { timeMs: number; id: number } | null;
}

export type QuarantineState = 'quarantined' | 'replayed' | 'dropped';

export interface QuarantineItem {
  id: number;
  logId: string;
  seq: number;
  projectId: string | null;
  payload: string;
  reason: string;
  attempts: number;
  state: QuarantineState;
  createdAt: number;
  resolvedAt: number | null;
}

/** Raised when the store's offset for a log moved under us: another applier got there first. */
export class OffsetConflictError extends Error {
  override name = 'OffsetConflictError';
}

/**
 * A cell's store: the materialised state the workers read and write. Every method may throw
 * when the store is down; `isUnavailableError` tells such an outage from a problem with one record.
 */
export interface CellStore extends OutboxStore {
  readonly capabilities: StoreCapabilities;
  migrate(): Promise<MigrationResult>;
  ping(): Promise<void>;
  isUnavailableError(error: unknown): boolean;

  /** The last log seq whose effects are committed here (0 if none). */
  appliedSeq(logId: string): Promise<number>;
  /**
   * In ONE transaction: checks the log offset is still `fromSeq`, runs `plan` against the
   * current state, writes its effects and moves the offset to `toSeq` (I1: effects and offset
   * commit together, so a crash replays only what was not committed).
   */
  applyBatch(
    logId: string,
    fromSeq: number,
    toSeq: number,
    plan: (tx: ApplyTx) => Promise<BatchEffects>,
  ): Promise<ApplyStats>;

  getProfile(projectId: string, customId: string, options: { eventsLimit: number }): Promise<ProfileDetail | null>;
  /** What a project's data has shown so far: custom attribute names and types, event names. */
  catalog(projectId: string): Promise<CatalogEntry[]>;
  listEvents(
    projectId: string,
    customId: string,
    options: { limit: number; before?: { timeMs: number; id: number } | undefined },
  ): Promise<EventPage | null>;

  /** Refreshes the query planner's statistics where the backend does not do it by itself (SQLite). */
  optimize(): Promise<void>;

  /** Targeting (issue 4): the segment's profiles in id order, streamed in batches. */
  matchingProfiles(projectId: string, segment: Segment, options: TargetingOptions): AsyncIterable<MatchedProfile[]>;
  /** How many profiles the segment holds, and how many each channel reaches. */
  estimateSegment(projectId: string, segment: Segment, options: TargetingOptions): Promise<SegmentEstimate>;
  /** What the single-profile evaluator needs about one profile; `events` (from `eventNeeds`) limits the events read. */
  profileFacts(projectId: string, customId: string, options?: { events?: ReadonlyMap<string, number | null> | undefined }): Promise<ProfileFacts | null>;
  /** The audiences of a project that have members (or had): live version and member count. */
  audienceStates(projectId: string): Promise<AudienceState[]>;
  /** The live members of an audience, ordered by (kind, member), after a cursor; one consistent snapshot per call. */
  audienceMembers(projectId: string, audienceId: string, options: { limit: number; after?: AudienceMember | undefined }): Promise<AudienceMember[]>;

  /** Campaigns, runs and messaging settings (issue 5). */
  readonly campaigns: SqlCampaignStore;
  /** How this backend's SQL differs, for queries built from segments (targeting, fan-out). */
  readonly dialect: TargetingDialect;
  /** Profiles by custom_id, for rendering a delivery batch's content. */
  profilesByCustomId(projectId: string, customIds: readonly string[]): Promise<Map<string, ProfileState>>;

  listQuarantine(options: { states: QuarantineState[]; limit: number }): Promise<QuarantineItem[]>;
  getQuarantine(id: number): Promise<QuarantineItem | null>;
  /** Moves an item out of 'quarantined'; false if it was not (any longer) quarantined. */
  resolveQuarantine(id: number, state: 'replayed' | 'dropped', nowMs: number): Promise<boolean>;

  close(): Promise<void>;
}

export function emptyEffects(): BatchEffects {
  return {
    deletedProfileIds: [],
    deletedInstallations: [],
    profiles: [],
    knownProfiles: [],
    installations: [],
    events: [],
    catalog: [],
    quarantined: [],
    sends: [],
    messages: [],
    engagements: [],
    audiences: [],
  };
}
