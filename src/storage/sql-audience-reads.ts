import type { AudienceMember, AudienceMemberKind, AudienceState } from './cell-store.ts';
import type { SqlExecutor } from './sql.ts';
import { readInt } from './sql.ts';

type Row = Record<string, unknown>;

export async function readAudienceStates(db: SqlExecutor, projectId: string): Promise<AudienceState[]> {
  const rows = await db.query<Row>(
    'SELECT audience_id, live_version, member_count, updated_at FROM audience_versions WHERE project_id = ? ORDER BY audience_id',
    [projectId],
  );
  return rows.map((r) => ({
    audienceId: String(r.audience_id),
    liveVersion: readInt(r.live_version),
    memberCount: readInt(r.member_count),
    updatedAt: readInt(r.updated_at),
  }));
}

/**
 * The live members, joined to the live version in the same statement, so one call is one
 * snapshot: during a replace it returns the old set or the new set, never a mix.
 */
export async function readAudienceMembers(
  db: SqlExecutor,
  projectId: string,
  audienceId: string,
  options: { limit: number; after?: AudienceMember | undefined },
): Promise<AudienceMember[]> {
  const after = options.after;
  const rows = await db.query<Row>(
    `SELECT m.kind, m.member FROM audience_versions v
     JOIN audience_members m ON m.audience_id = v.audience_id AND m.version = v.live_version
     WHERE v.project_id = ? AND v.audience_id = ?${after ? ' AND (m.kind > ? OR (m.kind = ? AND m.member > ?))' : ''}
     ORDER BY m.kind, m.member LIMIT ?`,
    after ? [projectId, audienceId, after.kind, after.kind, after.member, options.limit] : [projectId, audienceId, options.limit],
  );
  return rows.map((r) => ({ kind: String(r.kind) as AudienceMemberKind, member: String(r.member) }));
}
