/**
 * The segment language: a JSON expression tree (issue 4, part 1). A segment says who should get a
 * message; the same tree is evaluated for one profile (triggers, journey branches) and compiled to
 * queries over a cell's store (campaigns, estimates). Every node is a plain JSON object with one
 * discriminating key, so a tree reads like what it means:
 *
 *   {"and": [
 *     {"native": "language", "op": "eq", "value": "fr"},
 *     {"reachable": "push", "platform": "ios"},
 *     {"event": "added_to_cart", "count": {"op": "gte", "value": 2}, "window": {"last_days": 7}},
 *     {"not": {"event": "purchase", "window": {"last_days": 7}}},
 *     {"not": {"audience": "churned"}}
 *   ]}
 */

/** Comparison operators, by what they compare. */
export type EqualityOp = 'eq' | 'ne' | 'in' | 'exists';
export type OrderOp = 'gt' | 'gte' | 'lt' | 'lte' | 'between';
export type StringOp = 'contains' | 'starts_with';
export type ArrayOp = 'contains_any' | 'contains_all';
/** Dates relative to the evaluation time; `anniversary_today` is in the profile's time zone. */
export type RelativeDateOp = 'within_last_days' | 'more_than_days_ago' | 'anniversary_today';
export type AttributeOp = EqualityOp | OrderOp | StringOp | ArrayOp | RelativeDateOp;

export const ATTRIBUTE_OPS: readonly AttributeOp[] = [
  'eq', 'ne', 'in', 'exists', 'gt', 'gte', 'lt', 'lte', 'between', 'contains', 'starts_with',
  'contains_any', 'contains_all', 'within_last_days', 'more_than_days_ago', 'anniversary_today',
];

/** A condition on a custom attribute (or, inside `where`, on an event's attribute). */
export interface AttributeCondition {
  attribute: string;
  op: AttributeOp;
  /** eq/ne/gt/…: a scalar; in/contains_any/contains_all: a list; between: [low, high]; relative ops: days; exists: absent. */
  value?: unknown;
}

export type NativeName = 'language' | 'region' | 'timezone' | 'email_marketing' | 'sms_marketing';
export const NATIVE_NAMES: readonly NativeName[] = ['language', 'region', 'timezone', 'email_marketing', 'sms_marketing'];

export interface NativeCondition {
  native: NativeName;
  op: EqualityOp;
  value?: unknown;
}

/** A time window: the last N days before the evaluation time, between two instants, or ever (absent). */
export type Window = { last_days: number } | { from: string; to: string };

export interface EventCondition {
  event: string;
  /** Conditions on the event's own attributes, all of which must hold. */
  where?: AttributeCondition[];
  /** How many matching events; default "at least one". */
  count?: { op: 'gte' | 'lte' | 'eq'; value: number };
  window?: Window;
}

/** When the first or last matching event happened, before or after an instant (or N days ago). */
export interface OccurrenceCondition {
  occurrence: 'first' | 'last';
  event: string;
  where?: AttributeCondition[];
  op: 'before' | 'after';
  /** An ISO 8601 instant, or `{ "days_ago": N }`. */
  value: string | { days_ago: number };
}

export interface AudienceCondition {
  audience: string;
}

export interface SegmentRefCondition {
  /** A saved segment's id or name. */
  segment: string;
}

export interface ReachableCondition {
  reachable: 'push' | 'email' | 'sms';
  /** Push only: on this platform. */
  platform?: 'ios' | 'android' | 'web';
}

export type MessageActivity = 'received' | 'opened' | 'clicked' | 'suppressed';

/** Message history (retargeting): what happened to a message from a campaign, automation, template or send. */
export interface MessageCondition {
  message: MessageActivity;
  /** Exactly one of these names the source. */
  campaign?: string;
  automation?: string;
  template?: string;
  send?: string;
  window?: Window;
}

/** A stable random bucket per profile: true for profiles whose hash (with `salt`) falls in [from, to) percent. */
export interface BucketCondition {
  bucket: { from: number; to: number; salt?: string };
}

export interface AndNode {
  and: Segment[];
}
export interface OrNode {
  or: Segment[];
}
export interface NotNode {
  not: Segment;
}

export type Condition =
  | AttributeCondition
  | NativeCondition
  | EventCondition
  | OccurrenceCondition
  | AudienceCondition
  | SegmentRefCondition
  | ReachableCondition
  | MessageCondition
  | BucketCondition;

export type Segment = AndNode | OrNode | NotNode | Condition;

/** Trees nest at most this deep (issue 4, part 5). */
export const MAX_DEPTH = 32;
