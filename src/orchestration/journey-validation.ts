import { CHANNELS, type Category, type Channel } from '../delivery/delivery-model.ts';
import { pointer, type Problem } from '../profiles/attribute-validation.ts';
import type { Segment } from '../targeting/segment-model.ts';
import { checkSegment, type SegmentCheck, type SegmentContext } from '../targeting/segment-validation.ts';
import {
  DEFAULT_FRESHNESS,
  DEFAULT_RE_ENTRY,
  MAX_DURATION_MS,
  MAX_EVENT_NAME_LENGTH,
  MAX_EXIT_EVENTS,
  MAX_NAME_LENGTH,
  MAX_STEPS,
  STEP_ID,
  STEP_TYPES,
  type EventTrigger,
  type Freshness,
  type JourneyDefinition,
  type JourneyEntry,
  type JourneyStep,
  type ReEntry,
  type StepType,
} from './journey-model.ts';

/** What a journey is checked against: the segment context, the saved templates, a content checker. */
export interface JourneyContext {
  /** Passed to checkSegment for branch conditions, segment entry and event filters. */
  segment: SegmentContext;
  /** A saved template's channel by id or name; undefined: no such template. */
  templateChannel(ref: string): string | undefined;
  /** Checks inline content for a channel; omitted: content is only checked to be an object. */
  checkContent?(channel: string, content: unknown, path: string, problems: Problem[]): void;
}

export type JourneyCheck =
  | { ok: true; journey: JourneyDefinition; warnings: Problem[] }
  | { ok: false; problems: Problem[]; warnings: Problem[] };

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION = /^([1-9]\d{0,15})([smhdw])$/;
const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DURATION_FORMAT = 'must be a whole number and a unit s, m, h, d or w, like "30m" or "7d"';

/** A duration like "30m" or "7d" in ms; null when it is not one. */
export function parseDuration(s: string): number | null {
  const m = DURATION.exec(s);
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) ? ms : null;
}

/** Which fields each step type takes. */
const STEP_FIELDS: Record<StepType, readonly string[]> = {
  wait: ['id', 'type', 'duration', 'until', 'next'],
  branch: ['id', 'type', 'condition', 'then', 'else'],
  wait_for_event: ['id', 'type', 'event', 'where', 'timeout', 'next', 'timeout_next'],
  send: ['id', 'type', 'channel', 'template', 'content', 'category', 'next'],
  exit: ['id', 'type'],
};
const JOURNEY_FIELDS = ['name', 'entry', 're_entry', 'exit_events', 'freshness', 'start', 'steps'];

/** A step as the graph checks see it: its id when valid, and the step ids it names, at their paths. */
interface StepNode {
  index: number;
  path: string;
  id: string | undefined;
  type: unknown;
  refs: { path: string; target: string }[];
}

/** The problems and warnings found so far, and what the journey is checked against. */
interface Report {
  ctx: JourneyContext;
  problems: Problem[];
  warnings: Problem[];
}

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const add = (r: Report, path: string, code: string, message: string): void => {
  r.problems.push({ path, code, message });
};
/** Reports a problem and returns what checking carries on with. */
function reject<T>(r: Report, path: string, code: string, message: string, fallback: T): T {
  add(r, path, code, message);
  return fallback;
}

function allowOnly(r: Report, node: Fields, path: string, keys: readonly string[], what: string): void {
  for (const key of Object.keys(node)) {
    if (!keys.includes(key))
      add(r, pointer(path, key), 'UNKNOWN_FIELD', `is not a field of ${what} (allowed: ${keys.join(', ')})`);
  }
}

/** A segment check's findings at its own paths, less any at `skipPath` (already reported here). */
function absorb(r: Report, check: SegmentCheck, skipPath?: string): void {
  if (!check.ok) r.problems.push(...check.problems.filter((p) => p.path !== skipPath));
  r.warnings.push(...check.warnings.filter((w) => w.path !== skipPath));
}

/** A required duration in ms; 0 after reporting a problem. */
function duration(r: Report, value: unknown, path: string): number {
  if (value === undefined) return reject(r, path, 'REQUIRED', `is required; ${DURATION_FORMAT}`, 0);
  const ms = typeof value === 'string' ? parseDuration(value) : null;
  if (ms === null) return reject(r, path, 'INVALID_DURATION', DURATION_FORMAT, 0);
  if (ms > MAX_DURATION_MS) return reject(r, path, 'DURATION_TOO_LONG', 'must be at most 365 days', 0);
  return ms;
}

/** An event name and its `where` filter, checked as the segment condition {event, where} at `path`. */
function eventFilter(r: Report, event: unknown, where: unknown, path: string): EventTrigger {
  const eventPath = pointer(path, 'event');
  let named = false;
  if (event === undefined) add(r, eventPath, 'REQUIRED', 'is required: the name of an event');
  else if (typeof event !== 'string' || event.length === 0)
    add(r, eventPath, 'INVALID_VALUE', 'must be an event name');
  else if (event.length > MAX_EVENT_NAME_LENGTH)
    add(r, eventPath, 'INVALID_LENGTH', `must be at most ${MAX_EVENT_NAME_LENGTH} characters`);
  else named = true;
  const node = where === undefined ? { event } : { event, where };
  absorb(r, checkSegment(node, r.ctx.segment, path), named ? undefined : eventPath);
  return node as EventTrigger;
}

function trigger(r: Report, value: unknown, path: string, what: string): EventTrigger {
  if (!isObject(value))
    return reject(r, path, 'INVALID_TYPE', 'must be {"event": name, "where"?: [conditions]}', { event: '' });
  allowOnly(r, value, path, ['event', 'where'], what);
  return eventFilter(r, value.event, value.where, path);
}

function entry(r: Report, value: unknown, path: string): JourneyEntry {
  const shape = 'must be {"event": name, "where"?: [conditions]} or {"segment": <segment>}';
  if (value === undefined) return reject(r, path, 'REQUIRED', `is required; ${shape}`, { event: '' });
  if (!isObject(value)) return reject(r, path, 'INVALID_TYPE', shape, { event: '' });
  if (['event', 'segment'].filter((key) => key in value).length !== 1) {
    return reject(
      r,
      path,
      'EVENT_OR_SEGMENT',
      'give exactly one of "event" (users enter on an event) or "segment" (users enter when they enter the segment)',
      { event: '' },
    );
  }
  if ('event' in value) return trigger(r, value, path, 'an event entry');
  allowOnly(r, value, path, ['segment'], 'a segment entry');
  absorb(r, checkSegment(value.segment, r.ctx.segment, pointer(path, 'segment')));
  return { segment: value.segment as Segment };
}

function reEntry(r: Report, value: unknown, path: string): ReEntry {
  if (value === undefined) return { ...DEFAULT_RE_ENTRY };
  if (!isObject(value))
    return reject(
      r,
      path,
      'INVALID_TYPE',
      'must be {"policy": "once" | "once_per" | "always", "window"?: duration}',
      DEFAULT_RE_ENTRY,
    );
  allowOnly(r, value, path, ['policy', 'window'], 're_entry');
  const { policy, window } = value;
  const policyPath = pointer(path, 'policy');
  if (policy === undefined) add(r, policyPath, 'REQUIRED', 'is required: "once", "once_per" or "always"');
  else if (policy !== 'once' && policy !== 'once_per' && policy !== 'always')
    add(r, policyPath, 'INVALID_VALUE', 'must be "once", "once_per" or "always"');
  if (policy === 'once_per')
    return { policy, window: window as string, windowMs: duration(r, window, pointer(path, 'window')) };
  if (window !== undefined)
    add(r, pointer(path, 'window'), 'UNEXPECTED_VALUE', 'a window applies to the "once_per" policy only');
  return policy === 'always' ? { policy } : { ...DEFAULT_RE_ENTRY };
}

function freshness(r: Report, value: unknown, path: string): Freshness {
  if (value === undefined) return { ...DEFAULT_FRESHNESS };
  if (!isObject(value))
    return reject(
      r,
      path,
      'INVALID_TYPE',
      'must be {"late_after"?: duration, "on_late"?: "send" | "expire"}',
      DEFAULT_FRESHNESS,
    );
  allowOnly(r, value, path, ['late_after', 'on_late'], 'freshness');
  const lateAfter = value.late_after ?? DEFAULT_FRESHNESS.late_after;
  const onLate = value.on_late ?? DEFAULT_FRESHNESS.on_late;
  const lateAfterMs = duration(r, lateAfter, pointer(path, 'late_after'));
  if (onLate !== 'send' && onLate !== 'expire')
    add(r, pointer(path, 'on_late'), 'INVALID_VALUE', 'must be "send" or "expire"');
  return { late_after: lateAfter as string, lateAfterMs, on_late: onLate as Freshness['on_late'] };
}

function exitEvents(r: Report, value: unknown, path: string): EventTrigger[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    return reject(r, path, 'INVALID_TYPE', 'must be a list of {"event": name, "where"?: [conditions]}', []);
  if (value.length > MAX_EXIT_EVENTS)
    return reject(r, path, 'TOO_MANY_ITEMS', `must have at most ${MAX_EXIT_EVENTS} items`, []);
  return value.map((v, i) => trigger(r, v, pointer(path, i), 'an exit event'));
}

/** Reads one field of a step that names another step, and records the reference for the graph checks. */
function ref(r: Report, node: StepNode, step: Fields, key: string, required = true): string {
  const value = step[key];
  const path = pointer(node.path, key);
  if (value === undefined) {
    if (required) add(r, path, 'REQUIRED', 'is required: the id of a step');
  } else if (typeof value !== 'string' || value.length === 0)
    add(r, path, 'INVALID_TYPE', 'must be the id of a step');
  else node.refs.push({ path, target: value });
  return value as string;
}

function waitStep(r: Report, node: StepNode, s: Fields): JourneyStep {
  const [id, path, next] = [node.id!, node.path, ref(r, node, s, 'next')];
  if ((s.duration === undefined) === (s.until === undefined)) {
    add(
      r,
      path,
      'DURATION_OR_UNTIL',
      'a wait takes exactly one of "duration" (like "1h") or "until" (a local time like "09:00")',
    );
  }
  if (s.until === undefined)
    return {
      id,
      type: 'wait',
      duration: s.duration as string,
      durationMs: s.duration === undefined ? 0 : duration(r, s.duration, pointer(path, 'duration')),
      next,
    };
  const m = typeof s.until === 'string' ? TIME_OF_DAY.exec(s.until) : null;
  if (!m) add(r, pointer(path, 'until'), 'INVALID_TIME', 'must be a time of day "HH:MM", like "09:00"');
  return {
    id,
    type: 'wait',
    until: s.until as string,
    untilMinuteOfDay: m ? Number(m[1]) * 60 + Number(m[2]) : 0,
    next,
  };
}

function branchStep(r: Report, node: StepNode, s: Fields): JourneyStep {
  const conditionPath = pointer(node.path, 'condition');
  if (s.condition === undefined)
    add(r, conditionPath, 'REQUIRED', 'is required: a segment the user must be in to take "then"');
  else absorb(r, checkSegment(s.condition, r.ctx.segment, conditionPath));
  return {
    id: node.id!,
    type: 'branch',
    condition: s.condition as Segment,
    then: ref(r, node, s, 'then'),
    else: ref(r, node, s, 'else'),
  };
}

function waitForEventStep(r: Report, node: StepNode, s: Fields): JourneyStep {
  const { event, where } = eventFilter(r, s.event, s.where, node.path);
  const timeoutMs = duration(r, s.timeout, pointer(node.path, 'timeout'));
  const step = {
    id: node.id!,
    type: 'wait_for_event' as const,
    event,
    timeout: s.timeout as string,
    timeoutMs,
    next: ref(r, node, s, 'next'),
    timeout_next: ref(r, node, s, 'timeout_next'),
  };
  return where === undefined ? step : { ...step, where };
}

/** A send's template must exist and be for the send's channel (when that channel is valid). */
function savedTemplate(r: Report, template: unknown, path: string, channel: Channel | undefined): void {
  if (typeof template !== 'string' || template.length === 0)
    return add(r, path, 'INVALID_TYPE', 'must be a saved template’s id or name');
  const templateChannel = r.ctx.templateChannel(template);
  if (templateChannel === undefined) add(r, path, 'TEMPLATE_NOT_FOUND', `there is no template "${template}"`);
  else if (channel && templateChannel !== channel)
    add(
      r,
      path,
      'TEMPLATE_CHANNEL_MISMATCH',
      `template "${template}" is for ${templateChannel}, not ${channel}`,
    );
}

function sendStep(r: Report, node: StepNode, s: Fields): JourneyStep {
  const path = node.path;
  const channel = s.channel as Channel;
  const known = CHANNELS.includes(channel);
  if (s.channel === undefined)
    add(r, pointer(path, 'channel'), 'REQUIRED', `is required: one of ${CHANNELS.join(', ')}`);
  else if (!known) add(r, pointer(path, 'channel'), 'INVALID_VALUE', `must be one of ${CHANNELS.join(', ')}`);
  const next = ref(r, node, s, 'next', false) as string | undefined;
  const category = s.category ?? 'marketing';
  if (category !== 'marketing' && category !== 'transactional')
    add(r, pointer(path, 'category'), 'INVALID_VALUE', 'must be "marketing" or "transactional"');
  const base = {
    id: node.id!,
    type: 'send' as const,
    channel,
    category: category as Category,
    ...(next === undefined ? {} : { next }),
  };
  if ((s.template === undefined) === (s.content === undefined)) {
    add(
      r,
      path,
      'TEMPLATE_OR_CONTENT',
      'a send takes exactly one of "template" (a saved template’s id or name) or "content" (inline content)',
    );
  }
  if (s.template !== undefined) {
    savedTemplate(r, s.template, pointer(path, 'template'), known ? channel : undefined);
    return { ...base, template: s.template as string };
  }
  const contentPath = pointer(path, 'content');
  if (s.content !== undefined && !isObject(s.content))
    add(r, contentPath, 'INVALID_TYPE', `must be ${known ? `${channel} ` : ''}content (an object)`);
  else if (s.content !== undefined && known)
    r.ctx.checkContent?.(channel, s.content, contentPath, r.problems);
  return { ...base, content: s.content as Fields };
}

const STEP_CHECKERS: Record<StepType, (r: Report, node: StepNode, s: Fields) => JourneyStep> = {
  wait: waitStep,
  branch: branchStep,
  wait_for_event: waitForEventStep,
  send: sendStep,
  exit: (_r, node) => ({ id: node.id!, type: 'exit' }),
};

function step(
  r: Report,
  value: unknown,
  index: number,
  path: string,
): { node: StepNode; step: JourneyStep | undefined } {
  const node: StepNode = { index, path, id: undefined, type: undefined, refs: [] };
  if (!isObject(value))
    return reject(r, path, 'INVALID_TYPE', 'must be a step object', { node, step: undefined });
  node.type = value.type;
  if (value.id === undefined) add(r, pointer(path, 'id'), 'REQUIRED', 'is required: a step id');
  else if (typeof value.id !== 'string' || !STEP_ID.test(value.id))
    add(r, pointer(path, 'id'), 'INVALID_VALUE', 'must be 1 to 64 letters, digits, "_" or "-"');
  else node.id = value.id;
  // Checked against the list, not by indexing: "constructor" must not find Object.prototype.
  if (!STEP_TYPES.includes(value.type as StepType)) {
    return reject(
      r,
      pointer(path, 'type'),
      value.type === undefined ? 'REQUIRED' : 'INVALID_VALUE',
      `must be one of ${STEP_TYPES.join(', ')}`,
      { node, step: undefined },
    );
  }
  const type = value.type as StepType;
  allowOnly(r, value, path, STEP_FIELDS[type], `a ${type} step`);
  return { node, step: STEP_CHECKERS[type](r, node, value) };
}

/** Duplicate ids, references to missing steps, the start; returns the steps by id (first of each id). */
function resolve(
  r: Report,
  nodes: StepNode[],
  start: unknown,
  startPath: string,
): { byId: Map<string, StepNode>; start: string; broken: boolean } {
  const byId = new Map<string, StepNode>();
  for (const n of nodes) {
    if (n.id === undefined) continue;
    const first = byId.get(n.id);
    if (first)
      add(r, pointer(n.path, 'id'), 'DUPLICATE_STEP', `step id "${n.id}" is already used by ${first.path}`);
    else byId.set(n.id, n);
  }
  let broken = false;
  for (const n of nodes) {
    for (const { path, target } of n.refs) {
      if (!byId.has(target)) broken = reject(r, path, 'UNKNOWN_STEP', `there is no step "${target}"`, true);
    }
  }
  if (start === undefined) return { byId, start: nodes[0]?.id ?? '', broken };
  if (typeof start !== 'string' || start.length === 0)
    return reject(r, startPath, 'INVALID_TYPE', 'must be the id of a step', {
      byId,
      start: '',
      broken: true,
    });
  if (!byId.has(start)) broken = reject(r, startPath, 'UNKNOWN_STEP', `there is no step "${start}"`, true);
  return { byId, start, broken };
}

/** Steps that no path from the start reaches. */
function unreachable(r: Report, byId: Map<string, StepNode>, start: string): void {
  const first = byId.get(start);
  if (!first) return;
  const seen = new Set([first]);
  const queue = [first];
  for (let n = queue.shift(); n; n = queue.shift()) {
    for (const { target } of n.refs) {
      const next = byId.get(target);
      if (next && !seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  for (const n of byId.values()) {
    if (!seen.has(n))
      add(r, n.path, 'UNREACHABLE_STEP', `step "${n.id}" cannot be reached from the start step "${start}"`);
  }
}

/** Loops made only of non-waiting steps would spin (and send) without pause: each one found is a problem. */
function loopsWithoutWait(r: Report, byId: Map<string, StepNode>): void {
  const waits = (n: StepNode): boolean => n.type === 'wait' || n.type === 'wait_for_event';
  const state = new Map<StepNode, 'open' | 'done'>();
  const stack: StepNode[] = [];
  const visit = (n: StepNode): void => {
    state.set(n, 'open');
    stack.push(n);
    const targets = new Set(n.refs.map((x) => byId.get(x.target)));
    for (const next of targets) {
      if (!next || waits(next)) continue;
      if (state.get(next) === 'open') {
        const loop = stack.slice(stack.indexOf(next)).map((s) => s.id);
        add(
          r,
          next.path,
          'CYCLE_WITHOUT_WAIT',
          `steps ${[...loop, next.id].join(' → ')} form a loop with no wait; add a wait or wait_for_event step to it`,
        );
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of byId.values()) if (!waits(n) && !state.has(n)) visit(n);
}

function steps(r: Report, value: unknown, path: string): { nodes: StepNode[]; steps: JourneyStep[] } {
  const none = { nodes: [], steps: [] };
  if (value === undefined) return reject(r, path, 'REQUIRED', 'is required: a list of steps', none);
  if (!Array.isArray(value)) return reject(r, path, 'INVALID_TYPE', 'must be a list of steps', none);
  if (value.length === 0) return reject(r, path, 'TOO_FEW_ITEMS', 'must have at least one step', none);
  if (value.length > MAX_STEPS)
    return reject(r, path, 'TOO_MANY_ITEMS', `must have at most ${MAX_STEPS} steps`, none);
  const checked = value.map((s, i) => step(r, s, i, pointer(path, i)));
  return { nodes: checked.map((c) => c.node), steps: checked.flatMap((c) => (c.step ? [c.step] : [])) };
}

/**
 * Checks a journey definition from untrusted JSON (`POST /v1/automations`): every problem with its
 * JSON pointer and a stable code (I9), warnings for events not seen yet. Returns the definition with
 * defaults filled in and durations in ms. Nothing is evaluated and nothing throws.
 */
export function checkJourney(input: unknown, ctx: JourneyContext, basePath = ''): JourneyCheck {
  const r: Report = { ctx, problems: [], warnings: [] };
  if (!isObject(input))
    return reject(r, basePath, 'INVALID_TYPE', 'must be a journey object', {
      ok: false,
      problems: r.problems,
      warnings: r.warnings,
    });
  const at = (key: string): string => pointer(basePath, key);
  allowOnly(r, input, basePath, JOURNEY_FIELDS, 'a journey');
  const name = input.name;
  if (name === undefined) add(r, at('name'), 'REQUIRED', 'is required');
  else if (typeof name !== 'string') add(r, at('name'), 'INVALID_TYPE', 'must be a string');
  else if (name.trim().length === 0 || name.length > MAX_NAME_LENGTH)
    add(r, at('name'), 'INVALID_LENGTH', `must be 1 to ${MAX_NAME_LENGTH} characters`);
  const journey = {
    name: name as string,
    entry: entry(r, input.entry, at('entry')),
    re_entry: reEntry(r, input.re_entry, at('re_entry')),
    exit_events: exitEvents(r, input.exit_events, at('exit_events')),
    freshness: freshness(r, input.freshness, at('freshness')),
    ...steps(r, input.steps, at('steps')),
  };
  const { nodes, ...definition } = journey;
  const { byId, start, broken } = resolve(r, nodes, input.start, at('start'));
  // A misspelt reference makes its intended target look unreachable: report the misspelling alone.
  if (!broken) unreachable(r, byId, start);
  loopsWithoutWait(r, byId);
  if (r.problems.length > 0) return { ok: false, problems: r.problems, warnings: r.warnings };
  return { ok: true, journey: { ...definition, start }, warnings: r.warnings };
}
