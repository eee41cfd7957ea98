import { HeraldError, type ErrorDetail } from '../core/errors.ts';

/** Reads an optional integer query parameter within bounds, or fails naming it. */
export function intParam(query: unknown, name: string, fallback: number, min: number, max: number): number {
  const raw = (query as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined || raw === '') return fallback;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidQuery(name, `must be a whole number from ${min} to ${max}`);
  }
  return value;
}

export function stringParam(query: unknown, name: string): string | undefined {
  const raw = (query as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 512) throw invalidQuery(name, 'must be given once, 1 to 512 characters');
  return raw;
}

export function invalidQuery(name: string, message: string): HeraldError {
  const detail: ErrorDetail = { path: `/query/${name}`, code: 'INVALID_VALUE', message };
  return new HeraldError('VALIDATION_FAILED', { details: [detail] });
}
