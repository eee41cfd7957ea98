import type { FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../core/errors.ts';
import { sha256Hex } from '../core/ids.ts';
import type { IngestRecord } from '../ingest/records.ts';
import { encodeRecord } from '../ingest/records.ts';
import type { CellRuntimes } from '../runtime/cell-runtimes.ts';
import { principalOf } from './auth.ts';
import { invalidQuery, stringParam } from './query.ts';
import type { CellRuntime } from '../runtime/cell-runtime.ts';

const INGEST_ID = /^ing_(.+)_(\d+)$/;

export function formatIngestId(cellId: string, lastSeq: number): string {
  return `ing_${cellId}_${lastSeq}`;
}

export function parseIngestId(value: string): { cellId: string; seq: number } | null {
  const m = INGEST_ID.exec(value);
  return m ? { cellId: m[1]!, seq: Number(m[2]) } : null;
}

/** Honours `?wait_for=<ingest_id>`: waits (≤ 5 s) until that write of this project's cell is applied. */
export async function waitForQuery(runtime: CellRuntime, query: unknown): Promise<void> {
  const waitFor = stringParam(query, 'wait_for');
  if (waitFor === undefined) return;
  const parsed = parseIngestId(waitFor);
  if (!parsed || parsed.cellId !== runtime.cell.id) throw invalidQuery('wait_for', 'is not an ingest_id of this project');
  await runtime.waitForApplied(parsed.seq, 5_000);
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!key || key.length > 255) {
    throw new HeraldError('VALIDATION_FAILED', {
      details: [{ path: '/headers/idempotency-key', code: 'INVALID_LENGTH', message: 'must be 1 to 255 characters' }],
    });
  }
  return key;
}

export interface Appended {
  accepted: number;
  ingestId: string;
  /** True when an Idempotency-Key repeat got the first request's answer. */
  replayed: boolean;
  /** What the caller stored with the first request (e.g. the send_id), returned on a repeat too. */
  meta: Record<string, unknown>;
}

/**
 * Appends a validated request's records to its project's cell log, as one unit, and returns only
 * once they are durable (I1). With an Idempotency-Key, a repeat within 24 h gets the first answer
 * and a different body under the same key gets 409 — decided inside the same log transaction as
 * the append, so no race can append twice.
 */
export async function appendRecords(
  cells: CellRuntimes,
  request: FastifyRequest,
  records: IngestRecord[],
  meta: Record<string, unknown> = {},
): Promise<Appended> {
  const principal = principalOf(request);
  const key = idempotencyKey(request);
  const runtime = cells.get(principal.project.cellId);
  const outcome = await runtime.append({
    payloads: records.map(encodeRecord),
    idempotency: key
      ? {
          projectId: principal.project.id,
          key,
          requestHash: sha256Hex(`${request.method} ${request.url.split('?')[0]}\n${JSON.stringify(request.body ?? null)}`),
          meta: JSON.stringify({ ...meta, accepted: records.length }),
        }
      : undefined,
  });
  switch (outcome.kind) {
    case 'conflict':
      throw new HeraldError('IDEMPOTENCY_CONFLICT');
    case 'replayed': {
      const first = JSON.parse(outcome.meta) as { accepted: number } & Record<string, unknown>;
      return { accepted: first.accepted, ingestId: formatIngestId(runtime.cell.id, outcome.lastSeq), replayed: true, meta: first };
    }
    case 'appended':
      return { accepted: records.length, ingestId: formatIngestId(runtime.cell.id, outcome.lastSeq), replayed: false, meta };
  }
}

/** Appends and answers 202 `{accepted, ingest_id}`. */
export async function submitRecords(
  cells: CellRuntimes,
  request: FastifyRequest,
  reply: FastifyReply,
  records: IngestRecord[],
): Promise<FastifyReply> {
  const result = await appendRecords(cells, request, records);
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(202).send({ accepted: result.accepted, ingest_id: result.ingestId });
}
