/**
 * Event-triggered journeys (`POST /v1/automations`): an entry (an event, or entering a segment), a
 * graph of steps (wait, branch, wait for an event, send, exit), and the rules for re-entry, exit
 * events and late timers. The types mirror the JSON on the wire (snake_case); a checked definition
 * (see journey-validation.ts) also carries every duration in ms (`durationMs`, `timeoutMs`,
 * `windowMs`, `lateAfterMs`) so the runtime never parses a duration string.
 *
 *   {"name": "Cart abandonment",
 *    "entry": {"event": "cart_abandoned"},
 *    "exit_events": [{"event": "purchase"}],
 *    "steps": [
 *      {"id": "wait1", "type": "wait", "duration": "1h", "next": "push1"},
 *      {"id": "push1", "type": "send", "channel": "push", "template": "cart_reminder"}]}
 */
import type { Category, Channel } from '../delivery/delivery-model.ts';
import type { AttributeCondition, Segment } from '../targeting/segment-model.ts';

export const MAX_STEPS = 100;
export const MAX_NAME_LENGTH = 100;
export const MAX_EVENT_NAME_LENGTH = 200;
export const MAX_EXIT_EVENTS = 20;
/** Every duration (waits, timeouts, re-entry windows, lateness) is at most a year. */
export const MAX_DURATION_MS = 365 * 86_400_000;
export const STEP_ID = /^[a-z0-9_-]{1,64}$/i;

/** An event, optionally filtered on its own attributes (all conditions must hold). */
export interface EventTrigger {
  event: string;
  where?: AttributeCondition[];
}

/** Users enter when they enter the segment (a tree, or `{"segment": "saved id or name"}`). */
export interface SegmentEntry {
  segment: Segment;
}

export type JourneyEntry = EventTrigger | SegmentEntry;

export type ReEntry =
  { policy: 'once' } | { policy: 'once_per'; window: string; windowMs: number } | { policy: 'always' };
export const DEFAULT_RE_ENTRY: ReEntry = Object.freeze({ policy: 'once' });

/** What a timer that fires more than `late_after` past its due time does (I6: send late, or expire and be counted). */
export interface Freshness {
  late_after: string;
  lateAfterMs: number;
  on_late: 'send' | 'expire';
}
export const DEFAULT_FRESHNESS: Freshness = Object.freeze({
  late_after: '1h',
  lateAfterMs: 3_600_000,
  on_late: 'send',
});

export interface WaitForDurationStep {
  id: string;
  type: 'wait';
  duration: string;
  durationMs: number;
  next: string;
}

/** Waits until the next time the clock shows `until` ("HH:MM") in the user's time zone. */
export interface WaitUntilStep {
  id: string;
  type: 'wait';
  until: string;
  /** `until` as minutes after local midnight (0–1439). */
  untilMinuteOfDay: number;
  next: string;
}

export type WaitStep = WaitForDurationStep | WaitUntilStep;

export interface BranchStep {
  id: string;
  type: 'branch';
  condition: Segment;
  then: string;
  else: string;
}

/** Goes on to `next` when the event arrives, to `timeout_next` when it has not after `timeout`. */
export interface WaitForEventStep extends EventTrigger {
  id: string;
  type: 'wait_for_event';
  timeout: string;
  timeoutMs: number;
  next: string;
  timeout_next: string;
}

interface SendStepBase {
  id: string;
  type: 'send';
  channel: Channel;
  category: Category;
  /** Absent: the user leaves the journey after this send. */
  next?: string;
}
/** Sends a saved template (by id or name). */
export interface SendTemplateStep extends SendStepBase {
  template: string;
}
/** Sends inline content for the channel. */
export interface SendContentStep extends SendStepBase {
  content: Record<string, unknown>;
}
export type SendStep = SendTemplateStep | SendContentStep;

export interface ExitStep {
  id: string;
  type: 'exit';
}

export type JourneyStep = WaitStep | BranchStep | WaitForEventStep | SendStep | ExitStep;
export type StepType = JourneyStep['type'];
export const STEP_TYPES: readonly StepType[] = ['wait', 'branch', 'wait_for_event', 'send', 'exit'];

/** A checked journey with every default filled in. */
export interface JourneyDefinition {
  name: string;
  entry: JourneyEntry;
  re_entry: ReEntry;
  /** Any of these events cancels the user's pending steps. */
  exit_events: EventTrigger[];
  freshness: Freshness;
  /** The id of the first step. */
  start: string;
  steps: JourneyStep[];
}

/** The steps by id. */
export function stepIndex(journey: JourneyDefinition): Map<string, JourneyStep> {
  return new Map(journey.steps.map((s) => [s.id, s]));
}

/** The ids of the steps a step can lead to, in field order. */
export function successors(step: JourneyStep): string[] {
  switch (step.type) {
    case 'wait':
      return [step.next];
    case 'branch':
      return [step.then, step.else];
    case 'wait_for_event':
      return [step.next, step.timeout_next];
    case 'send':
      return step.next === undefined ? [] : [step.next];
    case 'exit':
      return [];
  }
}
