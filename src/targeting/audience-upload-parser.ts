import { StringDecoder } from 'node:string_decoder';
import { isObject, memberProblem } from './audience-members.ts';
import type { AudienceMemberKind } from '../storage/cell-store.ts';

/** A line longer than this is refused (and never held whole in memory). */
export const MAX_LINE_CHARS = 64 * 1024;

export type UploadFormat = 'csv' | 'ndjson';

export type UploadRow = { line: number; kind: AudienceMemberKind; member: string } | { line: number; error: string };

/** Thrown when the upload as a whole cannot be read (no usable header): a 400, not a failed import. */
export class UploadFormatError extends Error {
  override name = 'UploadFormatError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Splits a byte stream into lines (LF or CRLF, UTF-8 across chunk boundaries) with their 1-based
 * numbers. Memory stays bounded: a line past MAX_LINE_CHARS is cut short and flagged, the rest of it
 * skipped as it streams.
 */
export async function* lines(body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<{ n: number; text: string; tooLong: boolean }> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let tooLong = false;
  let n = 0;
  const take = (text: string) => {
    n++;
    const long = tooLong || text.length > MAX_LINE_CHARS;
    tooLong = false;
    return { n, text: long ? text.slice(0, 200) : text.endsWith('\r') ? text.slice(0, -1) : text, tooLong: long };
  };
  for await (const chunk of body) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', start)) {
      const line = tooLong ? pending : pending + text.slice(start, i);
      pending = '';
      start = i + 1;
      yield take(line);
    }
    if (!tooLong) pending += text.slice(start);
    if (pending.length > MAX_LINE_CHARS) {
      pending = pending.slice(0, 200);
      tooLong = true;
    }
  }
  pending += tooLong ? '' : decoder.end();
  if (pending.length > 0 || tooLong) yield take(pending);
}

/** One CSV record's fields (RFC 4180 quoting within a line), or null when a quote is left open. */
export function csvFields(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return null;
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      fields.push(value);
      if (i < line.length && line[i] !== ',') return null;
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma === -1 ? line.length : comma));
      i = comma === -1 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

const HEADER_NAMES: Record<string, AudienceMemberKind> = { custom_id: 'custom_id', install_id: 'install_id' };

function member(line: number, kind: AudienceMemberKind, value: unknown): UploadRow {
  const problem = memberProblem(value);
  return problem ? { line, error: `${kind} ${problem}` } : { line, kind, member: value as string };
}

function csvRow(n: number, text: string, columns: [number, AudienceMemberKind][]): UploadRow {
  const fields = csvFields(text);
  if (!fields) return { line: n, error: 'has an unterminated quoted field' };
  const given = columns.filter(([i]) => (fields[i] ?? '').trim() !== '');
  if (given.length !== 1) return { line: n, error: `must give exactly one of ${columns.map(([, k]) => k).join(', ')}` };
  const [index, kind] = given[0]!;
  return member(n, kind, fields[index]!.trim());
}

function ndjsonRow(n: number, text: string): UploadRow {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { line: n, error: 'is not valid JSON' };
  }
  if (!isObject(value)) return { line: n, error: 'must be a JSON object like {"custom_id": "…"}' };
  const given = (['custom_id', 'install_id'] as const).filter((k) => value[k] !== undefined && value[k] !== null);
  if (given.length !== 1) return { line: n, error: 'must have exactly one of custom_id, install_id' };
  return member(n, given[0]!, value[given[0]!]);
}

/**
 * Reads an upload row by row. CSV: a header row naming a `custom_id` and/or `install_id` column
 * (other columns are ignored), then one member per row. NDJSON: one `{"custom_id": …}` or
 * `{"install_id": …}` object per line. Blank lines are skipped; line numbers count every line.
 */
export async function* uploadRows(body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, format: UploadFormat): AsyncGenerator<UploadRow> {
  let columns: [number, AudienceMemberKind][] | undefined;
  for await (const { n, text, tooLong } of lines(body)) {
    const line = n === 1 ? text.replace(/^\uFEFF/, '') : text;
    if (line.trim() === '') continue;
    if (tooLong) {
      if (format === 'csv' && !columns) throw new UploadFormatError('MISSING_ID_COLUMN', `the header row (line ${n}) is longer than ${MAX_LINE_CHARS} characters`);
      yield { line: n, error: `is longer than ${MAX_LINE_CHARS} characters` };
      continue;
    }
    if (format === 'ndjson') {
      yield ndjsonRow(n, line);
    } else if (!columns) {
      const header = csvFields(line) ?? [];
      columns = header.flatMap((name, i): [number, AudienceMemberKind][] => {
        const kind = HEADER_NAMES[name.trim().toLowerCase()];
        return kind ? [[i, kind]] : [];
      });
      if (columns.length === 0) throw new UploadFormatError('MISSING_ID_COLUMN', `the header row (line ${n}) must name a custom_id or install_id column`);
    } else {
      yield csvRow(n, line, columns);
    }
  }
  if (format === 'csv' && !columns) throw new UploadFormatError('EMPTY_UPLOAD', 'the upload is empty: it needs a header row naming a custom_id or install_id column');
}
