import type { AudienceRows } from '../audience-writes.ts';
import type { PgTx } from './pg-db.ts';

/** Audience changes as set-based statements: a member list is one array parameter (unnest / ANY). */
export function pgAudienceRows(tx: PgTx): AudienceRows {
  const run = async (sql: string, params: unknown[]): Promise<void> => {
    await tx.queryNative(sql, params);
  };
  const count = async (sql: string, params: unknown[]): Promise<number> =>
    (await tx.queryNative<{ n: number }>(sql, params))[0]?.n ?? 0;
  return {
    ensure: (projectId, audienceId, atMs) =>
      run(
        `INSERT INTO audience_versions (audience_id, project_id, live_version, member_count, updated_at) VALUES ($1, $2, 0, 0, $3)
         ON CONFLICT (audience_id) DO NOTHING`,
        [audienceId, projectId, atMs],
      ),
    liveVersion: (audienceId) => count('SELECT live_version AS n FROM audience_versions WHERE audience_id = $1', [audienceId]),
    insert: (audienceId, version, kind, members) =>
      count(
        `WITH ins AS (INSERT INTO audience_members (audience_id, version, kind, member)
           SELECT $1::text, $2::int, $3::text, m FROM unnest($4::text[]) AS m ON CONFLICT DO NOTHING RETURNING 1)
         SELECT count(*)::int AS n FROM ins`,
        [audienceId, version, kind, members],
      ),
    remove: (audienceId, version, kind, members) =>
      count(
        `WITH del AS (DELETE FROM audience_members WHERE audience_id = $1 AND version = $2 AND kind = $3 AND member = ANY($4::text[])
           RETURNING 1)
         SELECT count(*)::int AS n FROM del`,
        [audienceId, version, kind, members],
      ),
    adjustCount: (audienceId, delta, atMs) =>
      run('UPDATE audience_versions SET member_count = member_count + $1, updated_at = $2 WHERE audience_id = $3', [delta, atMs, audienceId]),
    setLive: (audienceId, version, atMs) =>
      run(
        `UPDATE audience_versions SET live_version = $2,
           member_count = (SELECT count(*) FROM audience_members WHERE audience_id = $1 AND version = $2), updated_at = $3
         WHERE audience_id = $1`,
        [audienceId, version, atMs],
      ),
    merge: (audienceId, from, to) =>
      run(
        `INSERT INTO audience_members (audience_id, version, kind, member)
         SELECT audience_id, $3::int, kind, member FROM audience_members WHERE audience_id = $1 AND version = $2 ON CONFLICT DO NOTHING`,
        [audienceId, from, to],
      ),
    subtract: (audienceId, from, to) =>
      run(
        `DELETE FROM audience_members l USING audience_members s
         WHERE l.audience_id = $1 AND l.version = $3 AND s.audience_id = $1 AND s.version = $2 AND s.kind = l.kind AND s.member = l.member`,
        [audienceId, from, to],
      ),
    dropVersion: (audienceId, version) => run('DELETE FROM audience_members WHERE audience_id = $1 AND version = $2', [audienceId, version]),
    dropAudience: async (audienceId) => {
      await run('DELETE FROM audience_members WHERE audience_id = $1', [audienceId]);
      await run('DELETE FROM audience_versions WHERE audience_id = $1', [audienceId]);
    },
  };
}
