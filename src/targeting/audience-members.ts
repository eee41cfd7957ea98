import type { ErrorDetail } from '../core/errors.ts';

/** Members per JSON call (add + remove, or a replace), as the issue sets it. */
export const MAX_MEMBERS_PER_CALL = 10_000;
export const MEMBER_KINDS = ['custom_ids', 'install_ids'] as const;
export type MemberListName = (typeof MEMBER_KINDS)[number];

export interface MemberLists {
  custom_ids: string[];
  install_ids: string[];
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Why a value cannot be a custom_id or install_id (the same rule as ingestion), or null. */
export function memberProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0 || value.length > 255) return 'must be 1 to 255 characters';
  if (CONTROL_CHARS.test(value)) return 'must not contain control characters';
  return null;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads `{custom_ids?: [...], install_ids?: [...]}` at `path`, adding a problem for each bad field;
 * `budget.left` counts down the members a call may still carry, and the first member beyond it is
 * reported as TOO_MANY_MEMBERS (`tooMany` holds its path).
 */
export function readMemberLists(value: unknown, path: string, problems: ErrorDetail[], budget: { left: number; tooMany?: string }): MemberLists {
  const out: MemberLists = { custom_ids: [], install_ids: [] };
  if (value === undefined) return out;
  if (!isObject(value)) {
    problems.push({ path, code: 'INVALID_TYPE', message: 'must be {"custom_ids": [...], "install_ids": [...]}' });
    return out;
  }
  for (const key of Object.keys(value)) {
    if (!(MEMBER_KINDS as readonly string[]).includes(key)) problems.push({ path: `${path}/${key}`, code: 'UNKNOWN_FIELD', message: 'is not a member list (custom_ids, install_ids)' });
  }
  for (const kind of MEMBER_KINDS) {
    const list = value[kind];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.push({ path: `${path}/${kind}`, code: 'INVALID_TYPE', message: 'must be an array of strings' });
      continue;
    }
    for (let i = 0; i < list.length; i++) {
      if (budget.left === 0) {
        budget.tooMany ??= `${path}/${kind}/${i}`;
        break;
      }
      budget.left--;
      const problem = memberProblem(list[i]);
      if (problem) problems.push({ path: `${path}/${kind}/${i}`, code: 'INVALID_MEMBER', message: problem });
      else out[kind].push(list[i] as string);
    }
  }
  return out;
}
