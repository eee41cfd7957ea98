import { Type } from 'typebox';
import { HeraldError } from '../core/errors.ts';
import type { AudienceDefinition, AudienceImport } from '../control/audience-store.ts';
import type { AudienceState } from '../storage/cell-store.ts';
import type { ApiDeps } from './api-deps.ts';

export const AudienceView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  member_count: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Live members as the cell store has applied them: eventually consistent with the log (null while the store is unavailable).',
  }),
  members_updated_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export const ImportView = Type.Object({
  id: Type.String(),
  audience_id: Type.String(),
  mode: Type.String(),
  format: Type.String(),
  state: Type.String({ description: 'in_progress, applied (readers see every row) or failed (nothing applied).' }),
  rows_read: Type.Integer(),
  rows_accepted: Type.Integer(),
  error_count: Type.Integer(),
  errors: Type.Array(Type.Object({ line: Type.Integer(), message: Type.String() }), { description: 'The first 100 bad rows.' }),
  reason: Type.Union([Type.String(), Type.Null()]),
  progress: Type.Object({
    phase: Type.String({ description: 'receiving (reading the body), logging (appending to the log), applying, done.' }),
    rows_logged: Type.Integer(),
    rows_total: Type.Integer(),
    percent: Type.Number(),
  }),
  ingest_id: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const iso = (ms: number) => new Date(ms).toISOString();

export function audienceView(a: AudienceDefinition, state: AudienceState | undefined | null) {
  return {
    id: a.id,
    name: a.name,
    description: a.description,
    member_count: state === null ? null : (state?.memberCount ?? 0),
    members_updated_at: state ? iso(state.updatedAt) : null,
    created_at: iso(a.createdAt),
    updated_at: iso(a.updatedAt),
  };
}

export function importView(i: AudienceImport) {
  const total = i.phase === 'receiving' ? i.rowsRead : i.rowsAccepted;
  const percent = i.state === 'applied' ? 100 : total === 0 ? 0 : Math.floor((i.rowsLogged / total) * 1000) / 10;
  return {
    id: i.id,
    audience_id: i.audienceId,
    mode: i.mode,
    format: i.format,
    state: i.state,
    rows_read: i.rowsRead,
    rows_accepted: i.rowsAccepted,
    error_count: i.errorCount,
    errors: i.errors,
    reason: i.reason,
    progress: { phase: i.phase, rows_logged: i.rowsLogged, rows_total: total, percent },
    ingest_id: i.ingestId,
    created_at: iso(i.createdAt),
    updated_at: iso(i.updatedAt),
  };
}

/** An audience of this project by id or name, or 404 — another project's audience is never found (I10). */
export async function findAudience(deps: ApiDeps, projectId: string, idOrName: string): Promise<AudienceDefinition> {
  const a = await deps.control.audiences.getAudience(projectId, idOrName);
  if (!a) throw new HeraldError('AUDIENCE_NOT_FOUND', { message: `No audience "${idOrName}" in this project.` });
  return a;
}
