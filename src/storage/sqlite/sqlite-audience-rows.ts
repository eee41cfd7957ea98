import type Database from 'better-sqlite3';
import type { AudienceRows } from '../audience-writes.ts';

/** better-sqlite3 is synchronous; the port is async so PostgreSQL can share the logic. */
function done(write: () => unknown): Promise<void> {
  write();
  return Promise.resolve();
}

/** Prepared statements for audience changes; member lists travel as one JSON array per statement. */
export function prepareAudienceRows(db: Database.Database): AudienceRows {
  const s = {
    ensure: db.prepare(
      `INSERT INTO audience_versions (audience_id, project_id, live_version, member_count, updated_at) VALUES (?, ?, 0, 0, ?)
       ON CONFLICT (audience_id) DO NOTHING`,
    ),
    live: db.prepare('SELECT live_version FROM audience_versions WHERE audience_id = ?').pluck(),
    insert: db.prepare(
      'INSERT OR IGNORE INTO audience_members (audience_id, version, kind, member) SELECT ?, ?, ?, value FROM json_each(?)',
    ),
    remove: db.prepare(
      'DELETE FROM audience_members WHERE audience_id = ? AND version = ? AND kind = ? AND member IN (SELECT value FROM json_each(?))',
    ),
    adjust: db.prepare('UPDATE audience_versions SET member_count = member_count + ?, updated_at = ? WHERE audience_id = ?'),
    setLive: db.prepare(
      `UPDATE audience_versions SET live_version = ?,
         member_count = (SELECT COUNT(*) FROM audience_members WHERE audience_id = ? AND version = ?), updated_at = ?
       WHERE audience_id = ?`,
    ),
    merge: db.prepare(
      `INSERT OR IGNORE INTO audience_members (audience_id, version, kind, member)
       SELECT audience_id, ?, kind, member FROM audience_members WHERE audience_id = ? AND version = ?`,
    ),
    subtract: db.prepare(
      `DELETE FROM audience_members WHERE audience_id = ? AND version = ?
         AND (kind, member) IN (SELECT kind, member FROM audience_members WHERE audience_id = ? AND version = ?)`,
    ),
    dropVersion: db.prepare('DELETE FROM audience_members WHERE audience_id = ? AND version = ?'),
    dropMembers: db.prepare('DELETE FROM audience_members WHERE audience_id = ?'),
    dropState: db.prepare('DELETE FROM audience_versions WHERE audience_id = ?'),
  };
  return {
    ensure: (projectId, audienceId, atMs) => done(() => s.ensure.run(audienceId, projectId, atMs)),
    liveVersion: (audienceId) => Promise.resolve(Number(s.live.get(audienceId) ?? 0)),
    insert: (audienceId, version, kind, members) => Promise.resolve(s.insert.run(audienceId, version, kind, JSON.stringify(members)).changes),
    remove: (audienceId, version, kind, members) => Promise.resolve(s.remove.run(audienceId, version, kind, JSON.stringify(members)).changes),
    adjustCount: (audienceId, delta, atMs) => done(() => s.adjust.run(delta, atMs, audienceId)),
    setLive: (audienceId, version, atMs) => done(() => s.setLive.run(version, audienceId, version, atMs, audienceId)),
    merge: (audienceId, from, to) => done(() => s.merge.run(to, audienceId, from)),
    subtract: (audienceId, from, to) => done(() => s.subtract.run(audienceId, to, audienceId, from)),
    dropVersion: (audienceId, version) => done(() => s.dropVersion.run(audienceId, version)),
    dropAudience: (audienceId) => {
      s.dropMembers.run(audienceId);
      s.dropState.run(audienceId);
      return Promise.resolve();
    },
  };
}
