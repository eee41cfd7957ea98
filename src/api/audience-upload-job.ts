import { createReadStream, createWriteStream, promises as fsp, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import { coerceError, isHeraldError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import { timeOrderedId } from '../core/ids.ts';
import type { AudienceImport, ImportMode } from '../control/audience-store.ts';
import type { ControlPlane } from '../control/control-plane.ts';
import type { AudienceMembersRecord } from '../ingest/records.ts';
import { encodeRecord } from '../ingest/records.ts';
import type { CellRuntimes } from '../runtime/cell-runtimes.ts';
import { uploadRows, UploadFormatError, type UploadFormat } from '../targeting/audience-upload-parser.ts';
import { formatIngestId, parseIngestId } from './ingest-submit.ts';

/** Members per log record: a record stays ~200 KB, and the applier's batches stay bounded by rows. */
export const CHUNK_MEMBERS = 5_000;
/** Bad rows kept with their line numbers; the rest are only counted. */
export const MAX_REPORTED_ERRORS = 100;
/** Progress is saved at least this often while an upload runs: it is also the upload's heartbeat. */
const HEARTBEAT_MS = 2_000;
/** An upload whose heartbeat is older than this belongs to a process that stopped. */
export const STALE_MS = 30_000;
const APPEND_ATTEMPTS = 60;

export interface UploadJobDeps {
  control: ControlPlane;
  cells: CellRuntimes;
  clock: Clock;
  logger: FastifyBaseLogger;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/**
 * Custom audience uploads. The body is read row by row while it arrives; good rows go to a spool
 * file (never the whole body in memory), bad ones are counted with their line numbers. Only when
 * every row is good are the members appended to the cell's log, as `stage` records under a fresh
 * version and one final `commit`: the applier makes them visible in one transaction, so an upload
 * is applied whole or not at all, whatever its mode — a crash before the commit leaves the live
 * set untouched, and the abandoned rows are discarded through the log.
 */
export class AudienceUploadJobs {
  readonly #jobs = new Map<string, { audienceId: string; abort: AbortController }>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(private readonly deps: UploadJobDeps) {
    this.#sweeper = setInterval(() => void this.sweep().catch(() => undefined), STALE_MS);
    this.#sweeper.unref();
  }

  /** Reads the whole body; answers the import as it stands then (in progress, or failed with its bad rows). */
  async receive(projectId: string, cellId: string, audienceId: string, mode: ImportMode, format: UploadFormat, body: AsyncIterable<Buffer>): Promise<AudienceImport> {
    const rows = uploadRows(body, format)[Symbol.asyncIterator]();
    const first = await rows.next(); // a header without an id column throws here: a 400, no import
    if (first.done && format === 'ndjson') {
      throw new UploadFormatError('EMPTY_UPLOAD', 'the upload is empty: send one {"custom_id": …} or {"install_id": …} per line');
    }
    const now = this.deps.clock.now();
    const version = await this.deps.control.audiences.nextVersion(projectId, audienceId);
    const job: AudienceImport = {
      id: timeOrderedId('imp', now), projectId, audienceId, mode, format, state: 'in_progress', phase: 'receiving', version,
      rowsRead: 0, rowsAccepted: 0, rowsLogged: 0, errorCount: 0, errors: [], reason: null, ingestId: null, createdAt: now, updatedAt: now,
    };
    await this.deps.control.audiences.insertImport(job);
    const abort = new AbortController();
    this.#jobs.set(job.id, { audienceId, abort });
    const spool = path.join(os.tmpdir(), `herald-${job.id}.spool`);
    const out = createWriteStream(spool);
    // A write failing (disk full, or buffered writes after a destroy) must fail this upload, never the process.
    let spoolError: Error | undefined;
    out.on('error', (error) => (spoolError ??= error));
    const heartbeat = setInterval(() => void this.#save(job).catch(() => undefined), HEARTBEAT_MS);
    try {
      for (let r = first; !r.done; r = await rows.next()) {
        if (abort.signal.aborted) throw new Error(String(abort.signal.reason));
        const row = r.value;
        job.rowsRead++;
        if ('error' in row) {
          job.errorCount++;
          if (job.errors.length < MAX_REPORTED_ERRORS) job.errors.push({ line: row.line, message: `line ${row.line} ${row.error}` });
        } else if (job.errorCount === 0) {
          job.rowsAccepted++;
          await write(out, `${row.kind === 'custom_id' ? 'c' : 'i'}${row.member}\n`);
        }
      }
      out.end();
      if (!out.closed) await once(out, 'close');
      if (spoolError) throw spoolError;
    } catch (error) {
      clearInterval(heartbeat);
      out.destroy();
      this.#jobs.delete(job.id);
      await fsp.rm(spool, { force: true });
      await this.#fail(job, `the upload stopped before its end (${coerceError(error).message}); nothing was applied`);
      return job;
    }
    if (job.errorCount > 0) {
      clearInterval(heartbeat);
      this.#jobs.delete(job.id);
      await fsp.rm(spool, { force: true });
      job.rowsAccepted = 0;
      await this.#fail(job, `${job.errorCount} of ${job.rowsRead} rows are invalid (the first ${job.errors.length} are listed); nothing was applied`, false);
      return job;
    }
    job.phase = 'logging';
    await this.#save(job);
    // The heartbeat goes on while the log takes the rows (it may be full and make us wait).
    void this.#log(job, cellId, spool, abort.signal).finally(() => {
      clearInterval(heartbeat);
      this.#jobs.delete(job.id);
    });
    return { ...job };
  }

  /** Appends the spooled members in chunks, then the commit; waits for the applier to apply it. */
  async #log(job: AudienceImport, cellId: string, spool: string, signal: AbortSignal): Promise<void> {
    const record = (op: 'stage' | 'commit', members: { c: string[]; i: string[] }): AudienceMembersRecord => ({
      kind: 'audience.members', project_id: job.projectId, audience_id: job.audienceId, op, version: job.version,
      ...(op === 'commit' ? { mode: job.mode } : {}), custom_ids: members.c, install_ids: members.i, received_at: this.deps.clock.now(),
    });
    try {
      let pending = { c: [] as string[], i: [] as string[] };
      const lines = readline.createInterface({ input: createReadStream(spool), crlfDelay: Infinity });
      for await (const line of lines) {
        (line[0] === 'c' ? pending.c : pending.i).push(line.slice(1));
        if (pending.c.length + pending.i.length === CHUNK_MEMBERS) {
          await this.#append(cellId, record('stage', pending), signal);
          job.rowsLogged += CHUNK_MEMBERS;
          pending = { c: [], i: [] };
          await this.#save(job);
        }
      }
      const seq = await this.#append(cellId, record('commit', pending), signal);
      job.rowsLogged += pending.c.length + pending.i.length;
      job.phase = 'applying';
      job.ingestId = formatIngestId(cellId, seq);
      await this.#save(job);
      const runtime = this.deps.cells.get(cellId);
      while (!signal.aborted && !(await runtime.waitForApplied(seq, 5_000)));
      if (runtime.appliedSeq >= seq) await this.#applied(job);
    } catch (error) {
      this.deps.logger.warn({ import: job.id, err: coerceError(error).message }, 'audience upload failed');
      if (job.phase !== 'applying') await this.#fail(job, `appending the upload to the log failed (${coerceError(error).message}); nothing was applied`).catch(() => undefined);
    } finally {
      await fsp.rm(spool, { force: true });
    }
  }

  /** Appends one record durably (I1), retrying while the log is full or unavailable. */
  async #append(cellId: string, record: AudienceMembersRecord, signal: AbortSignal): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new Error(String(signal.reason));
      try {
        const outcome = await this.deps.cells.get(cellId).append({ payloads: [encodeRecord(record)] });
        if (outcome.kind !== 'conflict') return outcome.lastSeq;
        throw new Error('unexpected idempotency conflict');
      } catch (error) {
        // Every audience record is safe to append twice (inserts are idempotent, a commit is a no-op the second time).
        if (!isHeraldError(error) || error.retryAfterSeconds === undefined || attempt >= APPEND_ATTEMPTS) throw error;
        await sleep(error.retryAfterSeconds * 1000, signal);
      }
    }
  }

  async #save(job: AudienceImport): Promise<void> {
    job.updatedAt = this.deps.clock.now();
    await this.deps.control.audiences.updateImport(job.id, job, job.updatedAt);
  }

  async #applied(job: AudienceImport): Promise<void> {
    job.state = 'applied';
    job.phase = 'done';
    await this.#save(job);
  }

  /** Marks an upload failed; its staged rows (if any reached the log) are discarded through the log. */
  async #fail(job: AudienceImport, reason: string, discard = true): Promise<void> {
    job.state = 'failed';
    job.reason = reason;
    await this.#save(job);
    if (!discard || job.rowsLogged === 0) return;
    const project = this.deps.control.project(job.projectId);
    if (!project) return;
    const record: AudienceMembersRecord = {
      kind: 'audience.members', project_id: job.projectId, audience_id: job.audienceId, op: 'discard', version: job.version, received_at: this.deps.clock.now(),
    };
    await this.deps.cells.get(project.cellId).append({ payloads: [encodeRecord(record)] }).catch(() => undefined);
  }

  /**
   * The import as it stands: one whose commit the applier has reached is applied; one whose
   * process stopped (no heartbeat for STALE_MS) before its commit reached the log is failed.
   */
  async resolve(job: AudienceImport): Promise<AudienceImport> {
    if (job.state !== 'in_progress' || this.#jobs.has(job.id)) return job;
    if (job.phase === 'applying' && job.ingestId) {
      const at = parseIngestId(job.ingestId);
      if (at && this.deps.cells.get(at.cellId).appliedSeq >= at.seq) await this.#applied(job);
      return job;
    }
    if (this.deps.clock.now() - job.updatedAt > STALE_MS) {
      await this.#fail(job, 'Herald stopped (a restart or a crash) during the upload, before all of it reached the log; nothing was applied — upload it again');
    }
    return job;
  }

  /** Settles what stopped processes left behind. */
  async sweep(): Promise<void> {
    for (const job of await this.deps.control.audiences.unfinishedImports()) await this.resolve(job);
  }

  /** Stops the uploads of an audience (it is being deleted). */
  abortAudience(audienceId: string): void {
    for (const job of this.#jobs.values()) if (job.audienceId === audienceId) job.abort.abort('the audience was deleted');
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const job of this.#jobs.values()) job.abort.abort('Herald is shutting down');
  }
}
