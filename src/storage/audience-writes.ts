import type { AudienceMemberKind, AudienceWrite } from './cell-store.ts';

/**
 * The row operations an audience change needs, implemented by each backend (prepared statements on
 * SQLite, set-based statements on PostgreSQL). Every call runs inside the applier's transaction.
 */
export interface AudienceRows {
  /** Creates the audience's state row (live version 0, no members) if it has none. */
  ensure(projectId: string, audienceId: string, atMs: number): Promise<void>;
  liveVersion(audienceId: string): Promise<number>;
  /** Inserts members under a version; answers how many were new. */
  insert(audienceId: string, version: number, kind: AudienceMemberKind, members: readonly string[]): Promise<number>;
  /** Deletes members from a version; answers how many were there. */
  remove(audienceId: string, version: number, kind: AudienceMemberKind, members: readonly string[]): Promise<number>;
  adjustCount(audienceId: string, delta: number, atMs: number): Promise<void>;
  /** Points readers at `version` and counts its members. */
  setLive(audienceId: string, version: number, atMs: number): Promise<void>;
  /** Copies the rows of version `from` into version `to` (existing ones kept). */
  merge(audienceId: string, from: number, to: number): Promise<void>;
  /** Deletes from version `to` the members present in version `from`. */
  subtract(audienceId: string, from: number, to: number): Promise<void>;
  dropVersion(audienceId: string, version: number): Promise<void>;
  /** Deletes every row of the audience, its state too. */
  dropAudience(audienceId: string): Promise<void>;
}

function lists(w: AudienceWrite): [AudienceMemberKind, string[]][] {
  return [
    ['custom_id', w.customIds],
    ['install_id', w.installIds],
  ];
}

/**
 * Applies one audience change. Readers (the segment compiler) only ever read the rows of
 * `audience_versions.live_version`, so staged rows are invisible until the commit, and a commit
 * moves the pointer (or merges) and drops the old rows in the applier's one transaction: a reader
 * sees the old set or the new one, never a mix. A replace whose version is older than the live
 * one (a later replace committed first) is dropped: the replace that started last wins.
 */
export async function writeAudienceChange(rows: AudienceRows, w: AudienceWrite): Promise<void> {
  const id = w.audienceId;
  if (w.op === 'delete') return rows.dropAudience(id);
  if (w.op === 'discard') {
    if (w.version !== null && (await rows.liveVersion(id)) !== w.version) await rows.dropVersion(id, w.version);
    return;
  }
  await rows.ensure(w.projectId, id, w.atMs);
  const live = await rows.liveVersion(id);
  if (w.op === 'add' || w.op === 'remove') {
    let delta = 0;
    for (const [kind, members] of lists(w)) {
      if (members.length === 0) continue;
      delta += w.op === 'add' ? await rows.insert(id, live, kind, members) : -(await rows.remove(id, live, kind, members));
    }
    await rows.adjustCount(id, delta, w.atMs);
    return;
  }
  const version = w.version;
  // Allocated versions never equal the live one; the guard keeps a malformed record from touching live rows.
  if (version === null || version === live) return;
  for (const [kind, members] of lists(w)) if (members.length > 0) await rows.insert(id, version, kind, members);
  if (w.op === 'stage') return;
  if (w.mode === 'replace') {
    if (version > live) {
      await rows.setLive(id, version, w.atMs);
      await rows.dropVersion(id, live);
    } else {
      await rows.dropVersion(id, version);
    }
    return;
  }
  if (w.mode === 'add') await rows.merge(id, version, live);
  else await rows.subtract(id, version, live);
  await rows.dropVersion(id, version);
  await rows.setLive(id, live, w.atMs);
}

/** Applies a batch's audience changes in log order. */
export async function writeAudienceChanges(rows: AudienceRows, writes: readonly AudienceWrite[]): Promise<void> {
  for (const w of writes) await writeAudienceChange(rows, w);
}
