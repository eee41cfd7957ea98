import type { Clock } from '../core/clock.ts';
import { HeraldError } from '../core/errors.ts';
import { timeOrderedId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { KeyKind } from './api-keys.ts';
import { displayPrefix, generateApiKey, hashApiKey, looksLikeApiKey } from './api-keys.ts';
import type { ApiKeyRecord, CellRecord, ControlConfigStore, ControlStore, ProjectRecord, ProviderLimitOverrides, ProviderRecord } from './control-store.ts';
import type { SecretBox } from './secret-box.ts';
import type { ControlAudienceStore } from './audience-store.ts';

export interface Principal {
  key: ApiKeyRecord;
  project: ProjectRecord;
}

export interface CreatedKey {
  record: ApiKeyRecord;
  /** The key itself: shown once, never stored. */
  key: string;
}

export interface CreatedProject {
  project: ProjectRecord;
  secretKey: CreatedKey;
  publicKey: CreatedKey;
}

 
const PROJECT_NAME = /^(?!prj_)[^\u0000-\u001f\u007f]{1,100}$/;
const CELL_ID = /^[a-z][a-z0-9_]{0,31}$/;
const NEGATIVE_CACHE_LIMIT = 10_000;

export interface ControlPlaneDeps {
  store: ControlStore;
  /** The same database, for providers and templates. */
  config: ControlConfigStore;
  /** The same database, for custom audiences and their uploads. */
  audiences: ControlAudienceStore;
  /** Seals and opens provider credentials. */
  secrets: SecretBox;
  /** Where the control plane lives (for display). */
  url: string;
  /** Where a new cell's store and log go. */
  cellUrls: (cellId: string) => { storeUrl: string; logUrl: string };
  clock: Clock;
  logger: Logger;
}

/**
 * Projects, API keys, cells and the project → cell map, with a cache every process keeps. A
 * version row bumped by every change tells the cache when to reload, so a key revoked from the
 * CLI stops working in a running server within one refresh interval.
 */
export class ControlPlane {
  readonly #store: ControlStore;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #url: string;
  readonly #cellUrls: ControlPlaneDeps['cellUrls'];
  readonly #config: ControlConfigStore;
  readonly #audiences: ControlAudienceStore;
  readonly #secrets: SecretBox;
  #providers = new Map<string, ProviderRecord[]>();
  #version = -1;
  #projects = new Map<string, ProjectRecord>();
  #cells = new Map<string, CellRecord>();
  #keys = new Map<string, ApiKeyRecord | null>();
  #timer: NodeJS.Timeout | undefined;
  readonly #listeners = new Set<() => void>();

  private constructor(deps: ControlPlaneDeps) {
    this.#store = deps.store;
    this.#url = deps.url;
    this.#cellUrls = deps.cellUrls;
    this.#config = deps.config;
    this.#audiences = deps.audiences;
    this.#secrets = deps.secrets;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
  }

  /** Migrates the control store and loads the cache. */
  static async open(deps: ControlPlaneDeps): Promise<ControlPlane> {
    await deps.store.migrate();
    const plane = new ControlPlane(deps);
    await plane.refresh();
    return plane;
  }

  get url(): string {
    return this.#url;
  }

  get store(): ControlStore {
    return this.#store;
  }

  /** Providers and templates. */
  get config(): ControlConfigStore {
    return this.#config;
  }

  /** Custom audience definitions and uploads (members live in the cells). */
  get audiences(): ControlAudienceStore {
    return this.#audiences;
  }

  /** The providers a project configured (credentials still sealed), from the cache. */
  providers(projectId: string): ProviderRecord[] {
    return this.#providers.get(projectId) ?? [];
  }

  /** Seals and saves (or replaces) a project's provider of one kind; `credentials` were validated. */
  async setProvider(
    projectId: string,
    kind: string,
    credentials: unknown,
    options: { sandbox: boolean; limits?: ProviderLimitOverrides | null },
  ): Promise<ProviderRecord> {
    const now = this.#clock.now();
    const existing = this.providers(projectId).find((p) => p.kind === kind);
    const record: ProviderRecord = {
      projectId,
      kind,
      sealedCredentials: this.#secrets.seal(JSON.stringify(credentials), `${projectId}/${kind}`),
      sandbox: options.sandbox,
      disabledReason: null,
      limits: options.limits && Object.keys(options.limits).length > 0 ? options.limits : null,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    await this.#config.putProvider(record);
    await this.refresh();
    return record;
  }

  /** The credentials of a configured provider, opened. Only senders call this; never log the result. */
  openCredentials(record: ProviderRecord): unknown {
    return JSON.parse(this.#secrets.open(record.sealedCredentials, `${record.projectId}/${record.kind}`)) as unknown;
  }

  async deleteProvider(projectId: string, kind: string): Promise<boolean> {
    const deleted = await this.#config.deleteProvider(projectId, kind);
    await this.refresh();
    return deleted;
  }

  /** Takes a provider out of use (e.g. its webhook endpoint answered 410) until it is saved again. */
  async disableProvider(projectId: string, kind: string, reason: string): Promise<void> {
    await this.#config.disableProvider(projectId, kind, reason, this.#clock.now());
    await this.refresh();
  }

  /** Reloads projects and cells if anything changed since the last look. */
  async refresh(): Promise<void> {
    const version = await this.#store.version();
    if (version === this.#version) return;
    const [projects, cells, providers] = await Promise.all([
      this.#store.listProjects(),
      this.#store.listCells(),
      this.#config.listProviders(),
    ]);
    this.#projects = new Map(projects.map((p) => [p.id, p]));
    this.#cells = new Map(cells.map((c) => [c.id, c]));
    const byProject = new Map<string, ProviderRecord[]>();
    for (const p of providers) byProject.set(p.projectId, [...(byProject.get(p.projectId) ?? []), p]);
    this.#providers = byProject;
    this.#keys = new Map();
    this.#version = version;
    for (const listener of this.#listeners) listener();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  watch(intervalMs = 1000): void {
    this.#timer ??= setInterval(() => {
      this.refresh().catch((error: unknown) => this.#logger.warn({ err: String(error) }, 'control plane refresh failed'));
    }, intervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#store.close();
  }

  cells(): CellRecord[] {
    return [...this.#cells.values()];
  }

  cell(id: string): CellRecord | undefined {
    return this.#cells.get(id);
  }

  projects(): ProjectRecord[] {
    return [...this.#projects.values()];
  }

  project(id: string): ProjectRecord | undefined {
    return this.#projects.get(id);
  }

  /** The project a key belongs to, or null for an unknown, malformed or revoked key. */
  async authenticate(rawKey: string): Promise<Principal | null> {
    if (!looksLikeApiKey(rawKey)) return null;
    // Keyed by the presented key itself (in memory only, like the request that carried it), so a
    // known key costs one map lookup and no hashing; dropped with every control-plane change.
    let key = this.#keys.get(rawKey);
    if (key === undefined) {
      key = await this.#store.findKeyByHash(hashApiKey(rawKey));
      if (this.#keys.size >= NEGATIVE_CACHE_LIMIT) this.#keys.clear();
      this.#keys.set(rawKey, key);
    }
    if (!key || key.revokedAt !== null) return null;
    let project = this.#projects.get(key.projectId);
    if (!project) {
      await this.refresh();
      project = this.#projects.get(key.projectId);
    }
    return project ? { key, project } : null;
  }

  /** Creates cell `c1` next to the control plane if there is no cell yet. */
  async ensureDefaultCell(): Promise<CellRecord> {
    await this.refresh();
    const first = this.cells()[0];
    if (first) return first;
    const urls = this.#cellUrls('c1');
    const cell: CellRecord = { id: 'c1', ...urls, protected: false, createdAt: this.#clock.now() };
    try {
      await this.#store.insertCell(cell);
    } catch (error) {
      // Another process created it at the same moment.
      await this.refresh();
      const existing = this.cells()[0];
      if (existing) return existing;
      throw error;
    }
    await this.refresh();
    return cell;
  }

  async createCell(id: string, urls?: { storeUrl: string; logUrl: string }): Promise<CellRecord> {
    if (!CELL_ID.test(id)) {
      throw new HeraldError('INVALID_ARGUMENT', { message: 'A cell id is 1 to 32 characters of a-z, 0-9 and _, starting with a letter.' });
    }
    const cell: CellRecord = {
      id,
      ...(urls ?? this.#cellUrls(id)),
      protected: false,
      createdAt: this.#clock.now(),
    };
    await this.#store.insertCell(cell);
    await this.refresh();
    return cell;
  }

  async createProject(name: string, options: { cellId?: string | undefined; rateLimitPerSecond?: number | undefined } = {}): Promise<CreatedProject> {
    if (!PROJECT_NAME.test(name)) {
      throw new HeraldError('INVALID_ARGUMENT', {
        message: 'A project name is 1 to 100 printable characters and does not start with "prj_".',
      });
    }
    await this.ensureDefaultCell();
    const cellId = options.cellId ?? (await this.#leastLoadedCell());
    if (!this.#cells.has(cellId)) {
      throw new HeraldError('CELL_NOT_FOUND', { message: `No cell "${cellId}"; see \`herald cells list\`.` });
    }
    const now = this.#clock.now();
    const project: ProjectRecord = {
      id: timeOrderedId('prj', now),
      name,
      cellId,
      rateLimitPerSecond: options.rateLimitPerSecond ?? null,
      createdAt: now,
      deletedAt: null,
    };
    const secretKey = this.#newKey(project.id, 'secret', 'default secret key');
    const publicKey = this.#newKey(project.id, 'public', 'default public key');
    await this.#store.insertProject(project, [
      { record: secretKey.record, hash: hashApiKey(secretKey.key) },
      { record: publicKey.record, hash: hashApiKey(publicKey.key) },
    ]);
    await this.refresh();
    return { project, secretKey, publicKey };
  }

  async findProject(idOrName: string): Promise<ProjectRecord> {
    const project = await this.#store.findProject(idOrName);
    if (!project) throw new HeraldError('PROJECT_NOT_FOUND', { message: `No project "${idOrName}"; see \`herald projects list\`.` });
    return project;
  }

  async createKey(projectRef: string, kind: KeyKind, name: string | null = null): Promise<CreatedKey & { project: ProjectRecord }> {
    const project = await this.findProject(projectRef);
    const created = this.#newKey(project.id, kind, name);
    await this.#store.insertKey(created.record, hashApiKey(created.key));
    return { ...created, project };
  }

  /** Revokes a key given its id (key_…) or the key itself. */
  async revokeKey(ref: string): Promise<ApiKeyRecord> {
    const record = looksLikeApiKey(ref) ? await this.#store.findKeyByHash(hashApiKey(ref)) : await this.#store.findKey(ref);
    if (!record) throw new HeraldError('KEY_NOT_FOUND', { message: 'No such API key; give its id (key_…) or the key itself.' });
    const now = this.#clock.now();
    await this.#store.revokeKey(record.id, now);
    await this.refresh(); // this process refuses the key at once; others within a refresh interval
    return { ...record, revokedAt: record.revokedAt ?? now };
  }

  #newKey(projectId: string, kind: KeyKind, name: string | null): CreatedKey {
    const key = generateApiKey(kind);
    const now = this.#clock.now();
    return {
      key,
      record: { id: timeOrderedId('key', now), projectId, kind, prefix: displayPrefix(key), name, createdAt: now, revokedAt: null },
    };
  }

  async #leastLoadedCell(): Promise<string> {
    const counts = await this.#store.countProjectsByCell();
    const cells = this.cells();
    cells.sort((a, b) => (counts.get(a.id) ?? 0) - (counts.get(b.id) ?? 0));
    return cells[0]!.id;
  }
}
