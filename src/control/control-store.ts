import { HeraldError } from '../core/errors.ts';
import type { SqlDb, SqlExecutor } from '../storage/sql.ts';
import { readInt, readOptionalInt } from '../storage/sql.ts';
import type { MigrationResult } from '../storage/migrations.ts';
import { runMigrations } from '../storage/migrations.ts';
import { CONTROL_MIGRATIONS } from './control-migrations.ts';
import type { KeyKind } from './api-keys.ts';

export interface CellRecord {
  id: string;
  storeUrl: string;
  logUrl: string;
  protected: boolean;
  createdAt: number;
}

export interface ProjectRecord {
  id: string;
  name: string;
  cellId: string;
  rateLimitPerSecond: number | null;
  createdAt: number;
  deletedAt: number | null;
}

export interface ApiKeyRecord {
  id: string;
  projectId: string;
  kind: KeyKind;
  prefix: string;
  name: string | null;
  createdAt: number;
  revokedAt: number | null;
}

type Row = Record<string, unknown>;

const cellFromRow = (r: Row): CellRecord => ({
  id: String(r.id),
  storeUrl: String(r.store_url),
  logUrl: String(r.log_url),
  protected: readInt(r.protected) === 1,
  createdAt: readInt(r.created_at),
});

const projectFromRow = (r: Row): ProjectRecord => ({
  id: String(r.id),
  name: String(r.name),
  cellId: String(r.cell_id),
  rateLimitPerSecond: readOptionalInt(r.rate_limit_per_second),
  createdAt: readInt(r.created_at),
  deletedAt: readOptionalInt(r.deleted_at),
});

const keyFromRow = (r: Row): ApiKeyRecord => ({
  id: String(r.id),
  projectId: String(r.project_id),
  kind: String(r.kind) as KeyKind,
  prefix: String(r.prefix),
  name: typeof r.name === 'string' ? r.name : null,
  createdAt: readInt(r.created_at),
  revokedAt: readOptionalInt(r.revoked_at),
});

const KEY_COLUMNS = 'id, project_id, kind, prefix, name, created_at, revoked_at';

/** The control plane's persistence: cells, projects, API keys. One implementation over the SQL port. */
export class ControlStore {
  constructor(
    private readonly db: SqlDb,
    private readonly migrationLock: string | undefined,
  ) {}

  migrate(): Promise<MigrationResult> {
    return runMigrations(this.db, CONTROL_MIGRATIONS, this.migrationLock);
  }

  async version(): Promise<number> {
    const rows = await this.db.query<Row>('SELECT version FROM control_version WHERE id = 1');
    return rows[0] ? readInt(rows[0].version) : 0;
  }

  /** Runs a change and bumps the version in the same transaction. */
  change<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const result = await fn(tx);
      await tx.run('UPDATE control_version SET version = version + 1 WHERE id = 1');
      return result;
    });
  }

  async listCells(): Promise<CellRecord[]> {
    return (await this.db.query<Row>('SELECT * FROM cells ORDER BY created_at, id')).map(cellFromRow);
  }

  async insertCell(cell: CellRecord): Promise<void> {
    await this.change((tx) =>
      tx.run('INSERT INTO cells (id, store_url, log_url, protected, created_at) VALUES (?, ?, ?, ?, ?)', [
        cell.id,
        cell.storeUrl,
        cell.logUrl,
        cell.protected ? 1 : 0,
        cell.createdAt,
      ]),
    );
  }

  async listProjects(): Promise<ProjectRecord[]> {
    return (await this.db.query<Row>('SELECT * FROM projects WHERE deleted_at IS NULL ORDER BY created_at, id')).map(
      projectFromRow,
    );
  }

  async findProject(idOrName: string): Promise<ProjectRecord | null> {
    const rows = await this.db.query<Row>('SELECT * FROM projects WHERE (id = ? OR name = ?) AND deleted_at IS NULL', [
      idOrName,
      idOrName,
    ]);
    return rows[0] ? projectFromRow(rows[0]) : null;
  }

  async countProjectsByCell(): Promise<Map<string, number>> {
    const rows = await this.db.query<Row>(
      'SELECT cell_id, COUNT(*) AS n FROM projects WHERE deleted_at IS NULL GROUP BY cell_id',
    );
    return new Map(rows.map((r) => [String(r.cell_id), readInt(r.n)]));
  }

  /** Inserts a project with its first keys, all or nothing. */
  async insertProject(
    project: ProjectRecord,
    keys: { record: ApiKeyRecord; hash: string }[],
  ): Promise<void> {
    try {
      await this.change(async (tx) => {
        await tx.run(
          'INSERT INTO projects (id, name, cell_id, rate_limit_per_second, created_at) VALUES (?, ?, ?, ?, ?)',
          [project.id, project.name, project.cellId, project.rateLimitPerSecond, project.createdAt],
        );
        for (const key of keys) await insertKey(tx, key.record, key.hash);
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new HeraldError('PROJECT_EXISTS', { message: `A project named "${project.name}" already exists.` });
      }
      throw error;
    }
  }

  async insertKey(record: ApiKeyRecord, hash: string): Promise<void> {
    await this.change((tx) => insertKey(tx, record, hash));
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const rows = await this.db.query<Row>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE key_hash = ?`, [hash]);
    return rows[0] ? keyFromRow(rows[0]) : null;
  }

  async findKey(id: string): Promise<ApiKeyRecord | null> {
    const rows = await this.db.query<Row>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`, [id]);
    return rows[0] ? keyFromRow(rows[0]) : null;
  }

  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    return (
      await this.db.query<Row>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE project_id = ? ORDER BY created_at, id`, [
        projectId,
      ])
    ).map(keyFromRow);
  }

  async revokeKey(id: string, nowMs: number): Promise<boolean> {
    return this.change(async (tx) => {
      const { changes } = await tx.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [nowMs, id]);
      return changes === 1;
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function insertKey(tx: SqlExecutor, record: ApiKeyRecord, hash: string): Promise<{ changes: number }> {
  return tx.run(
    'INSERT INTO api_keys (id, project_id, kind, key_hash, prefix, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [record.id, record.projectId, record.kind, hash, record.prefix, record.name, record.createdAt],
  );
}

export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export interface ProviderRecord {
  projectId: string;
  kind: string;
  /** Sealed credentials (see SecretBox); opened only by whoever sends. */
  sealedCredentials: string;
  sandbox: boolean;
  disabledReason: string | null;
  /** Overrides of the provider's default rate and concurrency (flow control), if any. */
  limits: ProviderLimitOverrides | null;
  createdAt: number;
  updatedAt: number;
}

export interface ProviderLimitOverrides {
  ratePerSecond?: number;
  maxConcurrency?: number;
}

export interface SegmentRecord {
  id: string;
  projectId: string;
  name: string;
  /** The segment tree, validated when saved. */
  definition: unknown;
  createdAt: number;
  updatedAt: number;
}

const segmentFromRow = (r: Row): SegmentRecord => ({
  id: String(r.id),
  projectId: String(r.project_id),
  name: String(r.name),
  definition: JSON.parse(String(r.definition)) as unknown,
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
});

export interface TemplateRecord {
  id: string;
  projectId: string;
  name: string;
  channel: string;
  /** Language → content; "default" is required. */
  variants: Record<string, Record<string, unknown>>;
  createdAt: number;
  updatedAt: number;
}

const providerFromRow = (r: Row): ProviderRecord => ({
  projectId: String(r.project_id),
  kind: String(r.kind),
  sealedCredentials: String(r.credentials),
  sandbox: readInt(r.sandbox) === 1,
  disabledReason: typeof r.disabled_reason === 'string' ? r.disabled_reason : null,
  limits: typeof r.limits === 'string' ? (JSON.parse(r.limits) as ProviderLimitOverrides) : null,
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
});

const templateFromRow = (r: Row): TemplateRecord => ({
  id: String(r.id),
  projectId: String(r.project_id),
  name: String(r.name),
  channel: String(r.channel),
  variants: JSON.parse(String(r.variants)) as Record<string, Record<string, unknown>>,
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
});

/** Providers and templates: project configuration kept with the control plane. */
export class ControlConfigStore {
  constructor(private readonly control: ControlStore, private readonly db: SqlDb) {}

  async listProviders(projectId?: string): Promise<ProviderRecord[]> {
    const rows = projectId
      ? await this.db.query<Row>('SELECT * FROM providers WHERE project_id = ? ORDER BY kind', [projectId])
      : await this.db.query<Row>('SELECT * FROM providers ORDER BY project_id, kind');
    return rows.map(providerFromRow);
  }

  async putProvider(p: ProviderRecord): Promise<void> {
    await this.control.change((tx) =>
      tx.run(
        `INSERT INTO providers (project_id, kind, credentials, sandbox, disabled_reason, limits, created_at, updated_at)
         VALUES (?, ?, ?, ?, NULL, ?, ?, ?)
         ON CONFLICT (project_id, kind) DO UPDATE SET credentials = excluded.credentials, sandbox = excluded.sandbox,
           disabled_reason = NULL, limits = excluded.limits, updated_at = excluded.updated_at`,
        [p.projectId, p.kind, p.sealedCredentials, p.sandbox ? 1 : 0, p.limits ? JSON.stringify(p.limits) : null, p.createdAt, p.updatedAt],
      ),
    );
  }

  async deleteProvider(projectId: string, kind: string): Promise<boolean> {
    return this.control.change(async (tx) => (await tx.run('DELETE FROM providers WHERE project_id = ? AND kind = ?', [projectId, kind])).changes === 1);
  }

  async disableProvider(projectId: string, kind: string, reason: string, nowMs: number): Promise<void> {
    await this.control.change((tx) =>
      tx.run('UPDATE providers SET disabled_reason = ?, updated_at = ? WHERE project_id = ? AND kind = ?', [reason, nowMs, projectId, kind]),
    );
  }

  async listTemplates(projectId: string): Promise<TemplateRecord[]> {
    return (await this.db.query<Row>('SELECT * FROM templates WHERE project_id = ? ORDER BY name', [projectId])).map(templateFromRow);
  }

  async getTemplate(projectId: string, idOrName: string): Promise<TemplateRecord | null> {
    const rows = await this.db.query<Row>('SELECT * FROM templates WHERE project_id = ? AND (id = ? OR name = ?)', [projectId, idOrName, idOrName]);
    return rows[0] ? templateFromRow(rows[0]) : null;
  }

  /** Inserts or replaces (by id); a name already used by another template is a conflict. */
  async putTemplate(t: TemplateRecord): Promise<void> {
    try {
      await this.control.change((tx) =>
        tx.run(
          `INSERT INTO templates (id, project_id, name, channel, variants, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET name = excluded.name, channel = excluded.channel, variants = excluded.variants,
             updated_at = excluded.updated_at`,
          [t.id, t.projectId, t.name, t.channel, JSON.stringify(t.variants), t.createdAt, t.updatedAt],
        ),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new HeraldError('TEMPLATE_EXISTS', { message: `A template named "${t.name}" already exists.` });
      throw error;
    }
  }

  async listSegments(projectId: string): Promise<SegmentRecord[]> {
    return (await this.db.query<Row>('SELECT * FROM segments WHERE project_id = ? ORDER BY name', [projectId])).map(segmentFromRow);
  }

  async getSegment(projectId: string, idOrName: string): Promise<SegmentRecord | null> {
    const rows = await this.db.query<Row>('SELECT * FROM segments WHERE project_id = ? AND (id = ? OR name = ?)', [projectId, idOrName, idOrName]);
    return rows[0] ? segmentFromRow(rows[0]) : null;
  }

  /** Inserts or replaces (by id); a name already used by another segment is a conflict. */
  async putSegment(s: SegmentRecord): Promise<void> {
    try {
      await this.control.change((tx) =>
        tx.run(
          `INSERT INTO segments (id, project_id, name, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET name = excluded.name, definition = excluded.definition, updated_at = excluded.updated_at`,
          [s.id, s.projectId, s.name, JSON.stringify(s.definition), s.createdAt, s.updatedAt],
        ),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new HeraldError('SEGMENT_EXISTS', { message: `A segment named "${s.name}" already exists.` });
      throw error;
    }
  }

  async deleteSegment(projectId: string, id: string): Promise<boolean> {
    return this.control.change(async (tx) => (await tx.run('DELETE FROM segments WHERE project_id = ? AND id = ?', [projectId, id])).changes === 1);
  }

  async deleteTemplate(projectId: string, id: string): Promise<boolean> {
    return this.control.change(async (tx) => (await tx.run('DELETE FROM templates WHERE project_id = ? AND id = ?', [projectId, id])).changes === 1);
  }
}
