import { HeraldError } from '../core/errors.ts';
import type { SqlDb } from '../storage/sql.ts';
import { readInt } from '../storage/sql.ts';
import { isUniqueViolation, type ControlStore } from './control-store.ts';

export interface AudienceDefinition {
  id: string;
  projectId: string;
  name: string;
  description: string | null;
  createdAt: number;
  updatedAt: number;
}

export type ImportMode = 'add' | 'remove' | 'replace';
export type ImportState = 'in_progress' | 'applied' | 'failed';
/** Where an in-progress upload is: reading the body, appending it to the log, waiting for the applier. */
export type ImportPhase = 'receiving' | 'logging' | 'applying' | 'done';

export interface ImportError {
  line: number;
  message: string;
}

export interface AudienceImport {
  id: string;
  projectId: string;
  audienceId: string;
  mode: ImportMode;
  format: 'csv' | 'ndjson';
  state: ImportState;
  phase: ImportPhase;
  /** The staging version its rows are written under. */
  version: number;
  rowsRead: number;
  rowsAccepted: number;
  rowsLogged: number;
  errorCount: number;
  /** The first bad rows (at most 100). */
  errors: ImportError[];
  reason: string | null;
  /** The ingest id of its commit record, once the log has it. */
  ingestId: string | null;
  createdAt: number;
  updatedAt: number;
}

type Row = Record<string, unknown>;

const audienceFromRow = (r: Row): AudienceDefinition => ({
  id: String(r.id),
  projectId: String(r.project_id),
  name: String(r.name),
  description: typeof r.description === 'string' ? r.description : null,
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
});

const importFromRow = (r: Row): AudienceImport => ({
  id: String(r.id),
  projectId: String(r.project_id),
  audienceId: String(r.audience_id),
  mode: String(r.mode) as ImportMode,
  format: String(r.format) as AudienceImport['format'],
  state: String(r.state) as ImportState,
  phase: String(r.phase) as ImportPhase,
  version: readInt(r.version),
  rowsRead: readInt(r.rows_read),
  rowsAccepted: readInt(r.rows_accepted),
  rowsLogged: readInt(r.rows_logged),
  errorCount: readInt(r.error_count),
  errors: JSON.parse(String(r.errors)) as ImportError[],
  reason: typeof r.reason === 'string' ? r.reason : null,
  ingestId: typeof r.ingest_id === 'string' ? r.ingest_id : null,
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
});

export type ImportProgress = Pick<AudienceImport, 'state' | 'phase' | 'rowsRead' | 'rowsAccepted' | 'rowsLogged' | 'errorCount' | 'errors' | 'reason' | 'ingestId'>;

/**
 * Custom audience definitions and their uploads, in the control plane next to saved segments.
 * Definitions change through `ControlStore.change` (every process sees them); versions and upload
 * progress are written directly, as they concern no cache and change often.
 */
export class ControlAudienceStore {
  constructor(private readonly control: ControlStore, private readonly db: SqlDb) {}

  async listAudiences(projectId: string): Promise<AudienceDefinition[]> {
    return (await this.db.query<Row>('SELECT * FROM audiences WHERE project_id = ? ORDER BY name', [projectId])).map(audienceFromRow);
  }

  async getAudience(projectId: string, idOrName: string): Promise<AudienceDefinition | null> {
    const rows = await this.db.query<Row>('SELECT * FROM audiences WHERE project_id = ? AND (id = ? OR name = ?)', [projectId, idOrName, idOrName]);
    return rows[0] ? audienceFromRow(rows[0]) : null;
  }

  /**
   * Name → audience id for a project: how segment trees (`{"audience": "churned"}`) resolve to the
   * `audience_id` of the cell store's audience_members / audience_versions.
   */
  async audienceIdsByName(projectId: string): Promise<Map<string, string>> {
    return new Map((await this.listAudiences(projectId)).map((a) => [a.name, a.id]));
  }

  async insertAudience(a: AudienceDefinition): Promise<void> {
    try {
      await this.control.change((tx) =>
        tx.run('INSERT INTO audiences (id, project_id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)', [
          a.id,
          a.projectId,
          a.name,
          a.description,
          a.createdAt,
          a.updatedAt,
        ]),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new HeraldError('AUDIENCE_EXISTS', { message: `An audience named "${a.name}" already exists.` });
      throw error;
    }
  }

  async deleteAudience(projectId: string, id: string): Promise<boolean> {
    return this.control.change(async (tx) => (await tx.run('DELETE FROM audiences WHERE project_id = ? AND id = ?', [projectId, id])).changes === 1);
  }

  /** A fresh staging version for an upload or a replace: never the live one, never reused. */
  async nextVersion(projectId: string, audienceId: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const { changes } = await tx.run('UPDATE audiences SET last_version = last_version + 1 WHERE project_id = ? AND id = ?', [projectId, audienceId]);
      if (changes !== 1) throw new HeraldError('AUDIENCE_NOT_FOUND');
      const rows = await tx.query<Row>('SELECT last_version FROM audiences WHERE id = ?', [audienceId]);
      return readInt(rows[0]?.last_version);
    });
  }

  async insertImport(i: AudienceImport): Promise<void> {
    await this.db.run(
      `INSERT INTO audience_imports (id, project_id, audience_id, mode, format, state, phase, version, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [i.id, i.projectId, i.audienceId, i.mode, i.format, i.state, i.phase, i.version, i.createdAt, i.updatedAt],
    );
  }

  /** Saves an upload's progress; a finished upload (applied or failed) is never changed again, whatever arrives late. */
  async updateImport(id: string, p: ImportProgress, nowMs: number): Promise<void> {
    await this.db.run(
      `UPDATE audience_imports SET state = ?, phase = ?, rows_read = ?, rows_accepted = ?, rows_logged = ?, error_count = ?,
         errors = ?, reason = ?, ingest_id = ?, updated_at = ? WHERE id = ? AND state = 'in_progress'`,
      [p.state, p.phase, p.rowsRead, p.rowsAccepted, p.rowsLogged, p.errorCount, JSON.stringify(p.errors), p.reason, p.ingestId, nowMs, id],
    );
  }

  async getImport(projectId: string, audienceId: string, id: string): Promise<AudienceImport | null> {
    const rows = await this.db.query<Row>('SELECT * FROM audience_imports WHERE project_id = ? AND audience_id = ? AND id = ?', [projectId, audienceId, id]);
    return rows[0] ? importFromRow(rows[0]) : null;
  }

  async listImports(projectId: string, audienceId: string, limit: number): Promise<AudienceImport[]> {
    const rows = await this.db.query<Row>(
      'SELECT * FROM audience_imports WHERE project_id = ? AND audience_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
      [projectId, audienceId, limit],
    );
    return rows.map(importFromRow);
  }

  /** Uploads still in progress (at start: the ones a previous process left behind). */
  async unfinishedImports(): Promise<AudienceImport[]> {
    return (await this.db.query<Row>("SELECT * FROM audience_imports WHERE state = 'in_progress' ORDER BY created_at")).map(importFromRow);
  }
}
