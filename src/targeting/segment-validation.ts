import type { AttributeType } from '../profiles/profile-model.ts';
import { pointer, type Problem } from '../profiles/attribute-validation.ts';
import { parseInstant } from './instant.ts';
import {
  ATTRIBUTE_OPS,
  MAX_DEPTH,
  NATIVE_NAMES,
  type AttributeOp,
  type Segment,
} from './segment-model.ts';

/** What a segment is checked against: the project's catalog and its saved segments and audiences. */
export interface SegmentContext {
  /** Custom attribute types seen so far (the catalog). An attribute not in it is a warning. */
  attributeTypes: ReadonlyMap<string, AttributeType>;
  /** Event names seen so far. An event not yet seen is a warning, not an error. */
  knownEvents: ReadonlySet<string>;
  /** Whether an audience exists; omitted: not checked. */
  audienceExists?: (name: string) => boolean;
  /** A saved segment's tree by id or name (for references and cycles); omitted: references are not followed. */
  savedSegment?: (ref: string) => { id: string; segment: Segment } | undefined;
  /** The saved segment being validated (a reference back to it is a cycle). */
  selfId?: string;
}

export type SegmentCheck = { ok: true; segment: Segment; warnings: Problem[] } | { ok: false; problems: Problem[]; warnings: Problem[] };

/** Which operators each attribute type takes. */
const OPS_BY_TYPE: Record<AttributeType, readonly AttributeOp[]> = {
  string: ['eq', 'ne', 'in', 'exists', 'contains', 'starts_with'],
  url: ['eq', 'ne', 'in', 'exists', 'contains', 'starts_with'],
  number: ['eq', 'ne', 'in', 'exists', 'gt', 'gte', 'lt', 'lte', 'between'],
  boolean: ['eq', 'ne', 'exists'],
  date: ['eq', 'ne', 'exists', 'gt', 'gte', 'lt', 'lte', 'between', 'within_last_days', 'more_than_days_ago', 'anniversary_today'],
  array: ['exists', 'contains_any', 'contains_all'],
};

const RELATIVE_OPS: readonly AttributeOp[] = ['within_last_days', 'more_than_days_ago'];
const LIST_OPS: readonly AttributeOp[] = ['in', 'contains_any', 'contains_all'];
const NODE_KEYS = ['and', 'or', 'not', 'attribute', 'native', 'occurrence', 'event', 'audience', 'segment', 'reachable', 'message', 'bucket'] as const;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInstant = (v: unknown): v is string => typeof v === 'string' && ISO_INSTANT.test(v) && parseInstant(v) !== undefined;
const isScalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * Checks a segment tree from untrusted JSON: every problem with the path of the offending node
 * (issue 4, part 5), warnings for names not seen yet. Nothing is evaluated.
 */
export function checkSegment(input: unknown, ctx: SegmentContext, basePath = ''): SegmentCheck {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const problem = (path: string, code: string, message: string): void => {
    problems.push({ path, code, message });
  };

  const allowOnly = (node: Record<string, unknown>, path: string, keys: readonly string[]): void => {
    for (const key of Object.keys(node)) {
      if (!keys.includes(key)) problem(pointer(path, key), 'UNKNOWN_FIELD', `is not a field of this condition (allowed: ${keys.join(', ')})`);
    }
  };

  const positiveDays = (value: unknown, path: string): void => {
    if (value === 0) problem(path, 'ZERO_WINDOW', 'a window of zero days matches nothing; use at least 1');
    else if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 36_500) {
      problem(path, 'INVALID_VALUE', 'must be a whole number of days from 1 to 36500');
    }
  };

  const window = (value: unknown, path: string): void => {
    if (!isObject(value)) return problem(path, 'INVALID_TYPE', 'must be {"last_days": N} or {"from": <ISO instant>, "to": <ISO instant>}');
    if ('last_days' in value) {
      allowOnly(value, path, ['last_days']);
      return positiveDays(value.last_days, pointer(path, 'last_days'));
    }
    allowOnly(value, path, ['from', 'to']);
    if (!isInstant(value.from)) problem(pointer(path, 'from'), 'INVALID_VALUE', 'must be an ISO 8601 date or instant');
    if (!isInstant(value.to)) problem(pointer(path, 'to'), 'INVALID_VALUE', 'must be an ISO 8601 date or instant');
    if (isInstant(value.from) && isInstant(value.to) && parseInstant(value.from)! >= parseInstant(value.to)!) {
      problem(path, 'ZERO_WINDOW', '"from" must be before "to"');
    }
  };

  /** An attribute condition; `type` is the attribute's type when known (from the catalog or the value). */
  const attributeCondition = (node: Record<string, unknown>, path: string, type: AttributeType | undefined): void => {
    allowOnly(node, path, ['attribute', 'op', 'value']);
    if (typeof node.attribute !== 'string' || node.attribute.length === 0) problem(pointer(path, 'attribute'), 'INVALID_VALUE', 'must be an attribute name');
    const op = node.op as AttributeOp;
    if (!ATTRIBUTE_OPS.includes(op)) return problem(pointer(path, 'op'), 'INVALID_VALUE', `must be one of ${ATTRIBUTE_OPS.join(', ')}`);
    if (type && !OPS_BY_TYPE[type].includes(op)) {
      return problem(pointer(path, 'op'), 'OPERATOR_TYPE_MISMATCH', `"${op}" does not apply to the ${type} attribute "${String(node.attribute)}"; it takes ${OPS_BY_TYPE[type].join(', ')}`);
    }
    const valuePath = pointer(path, 'value');
    const value = node.value;
    if (op === 'exists' || op === 'anniversary_today') {
      if (value !== undefined) problem(valuePath, 'UNEXPECTED_VALUE', `"${op}" takes no value`);
      return;
    }
    if (RELATIVE_OPS.includes(op)) return positiveDays(value, valuePath);
    if (LIST_OPS.includes(op)) {
      if (!Array.isArray(value) || value.length === 0 || value.length > 1_000 || !value.every(isScalar)) {
        return problem(valuePath, 'INVALID_VALUE', 'must be a list of 1 to 1000 strings, numbers or booleans');
      }
      return;
    }
    if (op === 'between') {
      if (!Array.isArray(value) || value.length !== 2) return problem(valuePath, 'INVALID_VALUE', 'must be [low, high]');
      const [low, high] = value as unknown[];
      const ordered = type === 'date' || (type === undefined && isInstant(low)) ? isInstant(low) && isInstant(high) && parseInstant(low)! <= parseInstant(high)! : typeof low === 'number' && typeof high === 'number' && low <= high;
      if (!ordered) problem(valuePath, 'INVALID_VALUE', 'must be [low, high] with low ≤ high, both numbers or both ISO dates');
      return;
    }
    if (!isScalar(value)) return problem(valuePath, 'INVALID_VALUE', 'must be a string, a number or a boolean');
    if (type === 'number' && typeof value !== 'number') problem(valuePath, 'INVALID_TYPE', 'must be a number (the attribute is a number)');
    if (type === 'boolean' && typeof value !== 'boolean') problem(valuePath, 'INVALID_TYPE', 'must be true or false (the attribute is a boolean)');
    if (type === 'date' && !isInstant(value)) problem(valuePath, 'INVALID_TYPE', 'must be an ISO 8601 date or instant (the attribute is a date)');
    if ((type === 'string' || type === 'url') && typeof value !== 'string') problem(valuePath, 'INVALID_TYPE', `must be a string (the attribute is a ${type})`);
    if (['gt', 'gte', 'lt', 'lte'].includes(op) && type === undefined && typeof value !== 'number' && !isInstant(value)) {
      problem(valuePath, 'INVALID_TYPE', 'must be a number or an ISO 8601 date');
    }
  };

  const whereList = (value: unknown, path: string): void => {
    if (value === undefined) return;
    if (!Array.isArray(value) || value.length === 0) return problem(path, 'INVALID_TYPE', 'must be a non-empty list of attribute conditions');
    value.forEach((c, i) => {
      const p = pointer(path, i);
      if (!isObject(c)) return problem(p, 'INVALID_TYPE', 'must be an attribute condition object');
      attributeCondition(c, p, undefined);
    });
  };

  const eventName = (value: unknown, path: string): void => {
    if (typeof value !== 'string' || value.length === 0) return problem(path, 'INVALID_VALUE', 'must be an event name');
    if (!ctx.knownEvents.has(value)) warnings.push({ path, code: 'EVENT_NOT_SEEN', message: `no event "${value}" has been received yet` });
  };

  const visit = (node: unknown, path: string, depth: number, refs: readonly string[]): void => {
    if (depth > MAX_DEPTH) return problem(path, 'TOO_DEEP', `segments nest at most ${MAX_DEPTH} levels`);
    if (!isObject(node)) return problem(path, 'INVALID_TYPE', 'must be a segment node (an object)');
    const kind = NODE_KEYS.find((k) => k in node);
    if (!kind) return problem(path, 'MALFORMED_SEGMENT', `is not a segment node: it needs one of ${NODE_KEYS.join(', ')}`);
    switch (kind) {
      case 'and':
      case 'or': {
        allowOnly(node, path, [kind]);
        const children = node[kind];
        if (!Array.isArray(children) || children.length === 0) return problem(pointer(path, kind), 'INVALID_TYPE', `"${kind}" must be a non-empty list of segment nodes`);
        children.forEach((child, i) => visit(child, pointer(pointer(path, kind), i), depth + 1, refs));
        return;
      }
      case 'not':
        allowOnly(node, path, ['not']);
        return visit(node.not, pointer(path, 'not'), depth + 1, refs);
      case 'attribute': {
        const name = typeof node.attribute === 'string' ? node.attribute : '';
        const type = ctx.attributeTypes.get(name);
        if (name && !type) warnings.push({ path: pointer(path, 'attribute'), code: 'ATTRIBUTE_NOT_SEEN', message: `no profile has the attribute "${name}" yet` });
        return attributeCondition(node, path, type);
      }
      case 'native': {
        allowOnly(node, path, ['native', 'op', 'value']);
        if (!NATIVE_NAMES.includes(node.native as never)) problem(pointer(path, 'native'), 'INVALID_VALUE', `must be one of ${NATIVE_NAMES.join(', ')}`);
        const op = node.op;
        if (op !== 'eq' && op !== 'ne' && op !== 'in' && op !== 'exists') return problem(pointer(path, 'op'), 'INVALID_VALUE', 'must be one of eq, ne, in, exists');
        const consent = node.native === 'email_marketing' || node.native === 'sms_marketing';
        const okValue = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && (!consent || v === 'subscribed' || v === 'unsubscribed');
        const what = consent ? '"subscribed" or "unsubscribed"' : 'a non-empty string';
        if (op === 'exists') {
          if (node.value !== undefined) problem(pointer(path, 'value'), 'UNEXPECTED_VALUE', '"exists" takes no value');
        } else if (op === 'in') {
          if (!Array.isArray(node.value) || node.value.length === 0 || !node.value.every(okValue)) problem(pointer(path, 'value'), 'INVALID_VALUE', `must be a non-empty list, each ${what}`);
        } else if (!okValue(node.value)) problem(pointer(path, 'value'), 'INVALID_VALUE', `must be ${what}`);
        return;
      }
      case 'occurrence': {
        allowOnly(node, path, ['occurrence', 'event', 'where', 'op', 'value']);
        if (node.occurrence !== 'first' && node.occurrence !== 'last') problem(pointer(path, 'occurrence'), 'INVALID_VALUE', 'must be "first" or "last"');
        eventName(node.event, pointer(path, 'event'));
        whereList(node.where, pointer(path, 'where'));
        if (node.op !== 'before' && node.op !== 'after') problem(pointer(path, 'op'), 'INVALID_VALUE', 'must be "before" or "after"');
        const v = node.value;
        if (isObject(v)) {
          allowOnly(v, pointer(path, 'value'), ['days_ago']);
          if (!Number.isInteger(v.days_ago) || (v.days_ago as number) < 0) problem(pointer(pointer(path, 'value'), 'days_ago'), 'INVALID_VALUE', 'must be a whole number of days, 0 or more');
        } else if (!isInstant(v)) problem(pointer(path, 'value'), 'INVALID_VALUE', 'must be an ISO 8601 instant or {"days_ago": N}');
        return;
      }
      case 'event': {
        allowOnly(node, path, ['event', 'where', 'count', 'window']);
        eventName(node.event, pointer(path, 'event'));
        whereList(node.where, pointer(path, 'where'));
        if (node.count !== undefined) {
          const c = node.count;
          const cp = pointer(path, 'count');
          if (!isObject(c)) problem(cp, 'INVALID_TYPE', 'must be {"op": "gte"|"lte"|"eq", "value": N}');
          else {
            allowOnly(c, cp, ['op', 'value']);
            if (c.op !== 'gte' && c.op !== 'lte' && c.op !== 'eq') problem(pointer(cp, 'op'), 'INVALID_VALUE', 'must be "gte", "lte" or "eq"');
            if (!Number.isInteger(c.value) || (c.value as number) < 0) problem(pointer(cp, 'value'), 'INVALID_VALUE', 'must be a whole number, 0 or more');
          }
        }
        if (node.window !== undefined) window(node.window, pointer(path, 'window'));
        return;
      }
      case 'audience':
        allowOnly(node, path, ['audience']);
        if (typeof node.audience !== 'string' || node.audience.length === 0) return problem(pointer(path, 'audience'), 'INVALID_VALUE', 'must be an audience name');
        if (ctx.audienceExists && !ctx.audienceExists(node.audience)) problem(pointer(path, 'audience'), 'UNKNOWN_AUDIENCE', `there is no audience "${node.audience}"`);
        return;
      case 'segment': {
        allowOnly(node, path, ['segment']);
        const ref = node.segment;
        if (typeof ref !== 'string' || ref.length === 0) return problem(pointer(path, 'segment'), 'INVALID_VALUE', 'must be a saved segment id or name');
        if (!ctx.savedSegment) return;
        const saved = ctx.savedSegment(ref);
        if (!saved) return problem(pointer(path, 'segment'), 'UNKNOWN_SEGMENT', `there is no saved segment "${ref}"`);
        if (saved.id === ctx.selfId || refs.includes(saved.id)) {
          return problem(pointer(path, 'segment'), 'SEGMENT_CYCLE', `segment "${ref}" refers back to itself through ${[...refs, saved.id].join(' → ')}`);
        }
        // Follow the reference only to find cycles; the saved tree was itself checked when it was saved.
        const nested: string[] = [];
        const findRefs = (n: unknown, d: number): void => {
          if (!isObject(n) || d > MAX_DEPTH) return;
          if (typeof n.segment === 'string') nested.push(n.segment);
          for (const k of ['and', 'or'] as const) if (Array.isArray(n[k])) for (const c of n[k] as unknown[]) findRefs(c, d + 1);
          if ('not' in n) findRefs(n.not, d + 1);
        };
        findRefs(saved.segment, 0);
        for (const inner of nested) visit({ segment: inner }, path, depth, [...refs, saved.id]);
        return;
      }
      case 'reachable':
        allowOnly(node, path, ['reachable', 'platform']);
        if (node.reachable !== 'push' && node.reachable !== 'email' && node.reachable !== 'sms') return problem(pointer(path, 'reachable'), 'INVALID_VALUE', 'must be "push", "email" or "sms"');
        if (node.platform !== undefined) {
          if (node.reachable !== 'push') problem(pointer(path, 'platform'), 'UNEXPECTED_VALUE', 'a platform applies to push only');
          else if (node.platform !== 'ios' && node.platform !== 'android' && node.platform !== 'web') problem(pointer(path, 'platform'), 'INVALID_VALUE', 'must be "ios", "android" or "web"');
        }
        return;
      case 'message': {
        const sources = ['campaign', 'automation', 'template', 'send'] as const;
        allowOnly(node, path, ['message', ...sources, 'window']);
        if (!['received', 'opened', 'clicked', 'suppressed'].includes(node.message as string)) problem(pointer(path, 'message'), 'INVALID_VALUE', 'must be "received", "opened", "clicked" or "suppressed"');
        const given = sources.filter((s) => node[s] !== undefined);
        if (given.length !== 1) problem(path, 'INVALID_VALUE', 'name exactly one of campaign, automation, template or send');
        for (const s of given) if (typeof node[s] !== 'string' || (node[s]).length === 0) problem(pointer(path, s), 'INVALID_VALUE', `must be a ${s} id`);
        if (node.window !== undefined) window(node.window, pointer(path, 'window'));
        return;
      }
      case 'bucket': {
        allowOnly(node, path, ['bucket']);
        const b = node.bucket;
        const bp = pointer(path, 'bucket');
        if (!isObject(b)) return problem(bp, 'INVALID_TYPE', 'must be {"from": 0-100, "to": 0-100, "salt"?: string}');
        allowOnly(b, bp, ['from', 'to', 'salt']);
        const inRange = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 100;
        if (!inRange(b.from)) problem(pointer(bp, 'from'), 'INVALID_VALUE', 'must be a percentage from 0 to 100');
        if (!inRange(b.to)) problem(pointer(bp, 'to'), 'INVALID_VALUE', 'must be a percentage from 0 to 100');
        if (inRange(b.from) && inRange(b.to) && b.from >= b.to) problem(bp, 'ZERO_WINDOW', '"from" must be below "to"');
        if (b.salt !== undefined && (typeof b.salt !== 'string' || b.salt.length > 100)) problem(pointer(bp, 'salt'), 'INVALID_VALUE', 'must be a string of at most 100 characters');
        return;
      }
    }
  };

  visit(input, basePath, 1, []);
  return problems.length === 0 ? { ok: true, segment: input as Segment, warnings } : { ok: false, problems, warnings };
}
