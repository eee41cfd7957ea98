/**
 * The ingest log port (I1, I2): an append-only, durable, ordered log per cell, separate from the
 * cell's store. Every API write lands here before it is acknowledged; the applier reads it in
 * order. Sequence numbers are dense per log and are visible in commit order, so a reader that has
 * seen `seq` never later finds a smaller one appear.
 */
export interface LogEntry {
  seq: number;
  appendedAt: number;
  payload: string;
}

/** An Idempotency-Key claimed atomically with the append it guards. */
export interface IdempotencyClaim {
  projectId: string;
  key: string;
  /** Hash of the request (method, path, body): the same key with another hash is a conflict. */
  requestHash: string;
  /** What the API needs to answer a repeat with the first response. */
  meta: string;
}

export interface AppendRequest {
  payloads: string[];
  idempotency?: IdempotencyClaim | undefined;
}

export type AppendOutcome =
  | { kind: 'appended'; firstSeq: number; lastSeq: number }
  | { kind: 'replayed'; lastSeq: number; meta: string }
  | { kind: 'conflict' };

export interface LogCapabilities {
  /** Calls block the calling thread (better-sqlite3); the runtime moves appends off the event loop. */
  readonly blocking: boolean;
}

export interface LogStats {
  headSeq: number;
  oldestSeq: number | null;
  entries: number;
}

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

export interface LogAppender {
  /**
   * Appends every request in ONE durable transaction (group commit); answers only once it is on
   * disk. With `deadlineMs` (wall clock), a transaction not ready to commit by then is rolled back
   * and fails with an error whose `code` is APPEND_DEADLINE: nothing of it was appended.
   */
  append(requests: readonly AppendRequest[], nowMs: number, deadlineMs?: number): Promise<AppendOutcome[]>;
}

/** Thrown by a log that rolled an append back because its deadline passed before COMMIT. */
export class AppendDeadlineError extends Error {
  override name = 'AppendDeadlineError';
  readonly code = 'APPEND_DEADLINE';
  constructor() {
    super('the append was rolled back: its deadline passed before it could commit');
  }
}

/** Rolls the append back (by throwing inside its transaction) if the deadline has passed. */
export function checkDeadline(deadlineMs: number | undefined): void {
  if (deadlineMs !== undefined && Date.now() > deadlineMs) throw new AppendDeadlineError();
}

/**
 * Marks an append failure after which the records may or may not be on disk (the connection or
 * the writer thread died during COMMIT): the caller must not say "nothing was accepted".
 */
export function maybeCommitted(error: unknown): boolean {
  return (error as { maybeCommitted?: unknown } | null)?.maybeCommitted === true;
}

export interface IngestLog extends LogAppender {
  readonly capabilities: LogCapabilities;
  /** A random id fixed when the log was created; the store keys its applied offset by it. */
  logId(): Promise<string>;
  /**
   * Entries with seq > afterSeq, in order: at most `limit`, and no more than `maxBytes` of payload
   * in all (but always the first one, however large), so a reader's memory stays bounded.
   */
  read(afterSeq: number, limit: number, maxBytes?: number): Promise<LogEntry[]>;
  headSeq(): Promise<number>;
  stats(): Promise<LogStats>;
  /**
   * Removes entries that are both applied (seq <= appliedSeq) and older than cutoffMs, at most
   * maxRows per call, and expired idempotency keys. Never removes an unapplied entry.
   */
  prune(options: { appliedSeq: number; cutoffMs: number; maxRows: number; nowMs: number }): Promise<number>;
  ping(): Promise<void>;
  isUnavailableError(error: unknown): boolean;
  close(): Promise<void>;
}

/** How many of the entries of sizes `sizes` (in order) fit in `maxBytes`; at least one. */
export function entriesWithin(sizes: readonly number[], maxBytes: number): number {
  let total = 0;
  for (let i = 0; i < sizes.length; i++) {
    total += sizes[i]!;
    if (total > maxBytes) return Math.max(1, i);
  }
  return sizes.length;
}
