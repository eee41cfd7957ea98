import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttributeType } from '../profiles/profile-model.ts';
import { bucketOf, evaluateSegment, type ProfileFacts } from './evaluate-profile.ts';
import type { Segment } from './segment-model.ts';
import { checkSegment, type SegmentContext } from './segment-validation.ts';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const DAY = 86_400_000;
const iso = (t: number): string => new Date(t).toISOString();

const ctx: SegmentContext = {
  attributeTypes: new Map<string, AttributeType>([
    ['plan', 'string'],
    ['age', 'number'],
    ['vip', 'boolean'],
    ['signup', 'date'],
    ['tags', 'array'],
    ['site', 'url'],
  ]),
  knownEvents: new Set(['added_to_cart', 'purchase']),
  audienceExists: (name) => name === 'churned',
};

function facts(over: Partial<ProfileFacts> = {}): ProfileFacts {
  return {
    projectId: 'prj_t',
    customId: 'ana',
    natives: { email: 'ana@example.com', emailMarketing: 'subscribed', phone: '+14155550123', smsMarketing: null, language: 'fr', region: 'FR', timezone: 'Europe/Paris' },
    attributes: { plan: 'pro', age: 34, vip: false, signup: iso(NOW - 3 * DAY), tags: ['a', 'b'], site: 'https://ana.example.com/me' },
    installations: [{ platform: 'ios', pushEnabled: true, reachable: true }],
    emailSuppressed: false,
    phoneSuppressed: false,
    events: [
      { name: 'added_to_cart', time: NOW - 1 * DAY, attributes: { price: 30, sku: 'x' } },
      { name: 'added_to_cart', time: NOW - 2 * DAY, attributes: { price: 5, sku: 'y' } },
      { name: 'added_to_cart', time: NOW - 20 * DAY, attributes: { price: 50, sku: 'z' } },
      { name: 'purchase', time: NOW - 40 * DAY, attributes: null },
    ],
    audiences: new Set(['churned']),
    messages: [{ activity: 'opened', at: NOW - 6 * DAY, campaign: 'cmp_promo' }],
    ...over,
  };
}

const is = (segment: Segment, f: ProfileFacts = facts()): boolean => {
  const checked = checkSegment(segment, ctx);
  assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.problems));
  return evaluateSegment(segment, f, { nowMs: NOW });
};

describe('segment evaluation for one profile', () => {
  it('attributes by type: equality, lists, order, strings, arrays, existence', () => {
    assert.equal(is({ attribute: 'plan', op: 'eq', value: 'pro' }), true);
    assert.equal(is({ attribute: 'plan', op: 'ne', value: 'pro' }), false);
    assert.equal(is({ attribute: 'plan', op: 'in', value: ['free', 'pro'] }), true);
    assert.equal(is({ attribute: 'age', op: 'gt', value: 30 }), true);
    assert.equal(is({ attribute: 'age', op: 'lte', value: 33 }), false);
    assert.equal(is({ attribute: 'age', op: 'between', value: [34, 40] }), true);
    assert.equal(is({ attribute: 'vip', op: 'eq', value: false }), true);
    assert.equal(is({ attribute: 'site', op: 'starts_with', value: 'https://ana' }), true);
    assert.equal(is({ attribute: 'site', op: 'contains', value: '/me' }), true);
    assert.equal(is({ attribute: 'tags', op: 'contains_any', value: ['b', 'q'] }), true);
    assert.equal(is({ attribute: 'tags', op: 'contains_all', value: ['a', 'q'] }), false);
    assert.equal(is({ attribute: 'plan', op: 'exists' }), true);
    assert.equal(is({ attribute: 'nickname', op: 'exists' }), false);
  });

  it('a missing attribute satisfies no comparison, not even ne (use not + eq for "not x, or unset")', () => {
    assert.equal(is({ attribute: 'nickname', op: 'ne', value: 'x' }), false);
    assert.equal(is({ not: { attribute: 'nickname', op: 'eq', value: 'x' } }), true);
  });

  it('dates: absolute order and relative to now; the anniversary in the profile’s time zone, 29 February on the 28th', () => {
    assert.equal(is({ attribute: 'signup', op: 'within_last_days', value: 7 }), true);
    assert.equal(is({ attribute: 'signup', op: 'within_last_days', value: 2 }), false);
    assert.equal(is({ attribute: 'signup', op: 'more_than_days_ago', value: 2 }), true);
    assert.equal(is({ attribute: 'signup', op: 'gt', value: '2026-11-01' }), true);
    const birthday = (date: string, tz: string, now: number) =>
      evaluateSegment({ attribute: 'birthday', op: 'anniversary_today' }, facts({ attributes: { birthday: date }, natives: { ...facts().natives, timezone: tz } }), { nowMs: now });
    assert.equal(birthday('1990-11-28', 'Europe/Paris', NOW), true);
    assert.equal(birthday('1990-11-29', 'Europe/Paris', NOW), false);
    // 23:30 UTC on the 28th is already the 29th in Tokyo.
    assert.equal(birthday('1990-11-29', 'Asia/Tokyo', Date.UTC(2026, 10, 28, 23, 30)), true);
    assert.equal(birthday('2000-02-29', 'UTC', Date.UTC(2027, 1, 28, 10)), true);
    assert.equal(birthday('2000-02-29', 'UTC', Date.UTC(2028, 1, 28, 10)), false);
  });

  it('native attributes and consent', () => {
    assert.equal(is({ native: 'language', op: 'eq', value: 'fr' }), true);
    assert.equal(is({ native: 'region', op: 'in', value: ['DE', 'FR'] }), true);
    assert.equal(is({ native: 'email_marketing', op: 'eq', value: 'subscribed' }), true);
    assert.equal(is({ native: 'sms_marketing', op: 'exists' }), false);
  });

  it('events: counts in a window, attribute filters, negation, first and last occurrence', () => {
    assert.equal(is({ event: 'added_to_cart', count: { op: 'gte', value: 2 }, window: { last_days: 7 } }), true);
    assert.equal(is({ event: 'added_to_cart', count: { op: 'gte', value: 3 }, window: { last_days: 7 } }), false);
    assert.equal(is({ event: 'added_to_cart', count: { op: 'eq', value: 3 } }), true);
    assert.equal(is({ event: 'added_to_cart', where: [{ attribute: 'price', op: 'gt', value: 20 }], count: { op: 'eq', value: 2 } }), true);
    assert.equal(is({ event: 'added_to_cart', window: { from: iso(NOW - 30 * DAY), to: iso(NOW - 10 * DAY) } }), true);
    assert.equal(is({ not: { event: 'purchase', window: { last_days: 7 } } }), true);
    assert.equal(is({ occurrence: 'first', event: 'added_to_cart', op: 'before', value: { days_ago: 10 } }), true);
    assert.equal(is({ occurrence: 'last', event: 'added_to_cart', op: 'before', value: { days_ago: 10 } }), false);
    assert.equal(is({ occurrence: 'last', event: 'purchase', op: 'after', value: '2026-01-01T00:00:00Z' }), true);
  });

  it('audiences, reachability per channel and platform, message history, stable buckets', () => {
    assert.equal(is({ audience: 'churned' }), true);
    assert.equal(is({ reachable: 'push', platform: 'ios' }), true);
    assert.equal(is({ reachable: 'push', platform: 'android' }), false);
    assert.equal(is({ reachable: 'email' }), true);
    assert.equal(is({ reachable: 'email' }, facts({ emailSuppressed: true })), false);
    assert.equal(is({ reachable: 'sms' }), false);
    assert.equal(is({ message: 'opened', campaign: 'cmp_promo', window: { last_days: 7 } }), true);
    assert.equal(is({ message: 'opened', campaign: 'cmp_promo', window: { last_days: 5 } }), false);
    const p = bucketOf('prj_t', 'ana', 'holdout');
    assert.equal(p, bucketOf('prj_t', 'ana', 'holdout'), 'stable');
    assert.equal(is({ bucket: { from: 0, to: 100, salt: 'holdout' } }), true);
    const other = p < 50 ? { from: 50, to: 100 } : { from: 0, to: 50 };
    assert.equal(is({ bucket: { ...other, salt: 'holdout' } }), false, `position ${p} is not in ${JSON.stringify(other)}`);
    // Roughly uniform: 10 % of 20,000 ids fall in [0, 10).
    let inside = 0;
    for (let i = 0; i < 20_000; i++) if (bucketOf('prj_t', `u${i}`, '') < 10) inside++;
    assert.ok(inside > 1_800 && inside < 2_200, `${inside} of 20,000 in a 10 % bucket`);
  });

  it('the marketer’s example: French iOS users with push who added to cart twice this week, did not buy, not churned, did not open the promo', () => {
    const segment: Segment = {
      and: [
        { native: 'language', op: 'eq', value: 'fr' },
        { reachable: 'push', platform: 'ios' },
        { event: 'added_to_cart', count: { op: 'gte', value: 2 }, window: { last_days: 7 } },
        { not: { event: 'purchase', window: { last_days: 7 } } },
        { not: { audience: 'churned' } },
        { not: { message: 'opened', campaign: 'cmp_promo', window: { last_days: 7 } } },
      ],
    };
    assert.equal(is(segment), false, 'in the churned audience and opened the promo');
    assert.equal(is(segment, facts({ audiences: new Set(), messages: [] })), true);
  });
});

describe('segment validation', () => {
  const problems = (segment: unknown, c: SegmentContext = ctx) => {
    const r = checkSegment(segment, c);
    assert.equal(r.ok, false, `expected problems for ${JSON.stringify(segment)}`);
    return r.ok ? [] : r.problems;
  };
  const has = (list: { path: string; code: string }[], path: string, code: string) =>
    assert.ok(list.some((p) => p.path === path && p.code === code), `${code} at ${path} in ${JSON.stringify(list)}`);

  it('a malformed expression, an unknown field or operator: 400-style problems with the path', () => {
    has(problems({ and: [{ native: 'language', op: 'eq', value: 'fr' }, { foo: 1 }] }), '/and/1', 'MALFORMED_SEGMENT');
    has(problems({ and: [] }), '/and', 'INVALID_TYPE');
    has(problems('everyone'), '', 'INVALID_TYPE');
    has(problems({ attribute: 'plan', op: 'eq', value: 'pro', extra: true }), '/extra', 'UNKNOWN_FIELD');
    has(problems({ attribute: 'plan', op: 'like', value: 'p%' }), '/op', 'INVALID_VALUE');
  });

  it('an operator that does not apply to the attribute’s type, and a value of the wrong type', () => {
    has(problems({ attribute: 'plan', op: 'gt', value: 3 }), '/op', 'OPERATOR_TYPE_MISMATCH');
    has(problems({ attribute: 'tags', op: 'eq', value: 'a' }), '/op', 'OPERATOR_TYPE_MISMATCH');
    has(problems({ attribute: 'age', op: 'eq', value: '34' }), '/value', 'INVALID_TYPE');
    has(problems({ attribute: 'signup', op: 'lt', value: 'yesterday' }), '/value', 'INVALID_TYPE');
    has(problems({ attribute: 'age', op: 'between', value: [40, 30] }), '/value', 'INVALID_VALUE');
  });

  it('a window of zero, in days, dates, counts and buckets', () => {
    has(problems({ event: 'purchase', window: { last_days: 0 } }), '/window/last_days', 'ZERO_WINDOW');
    has(problems({ attribute: 'signup', op: 'within_last_days', value: 0 }), '/value', 'ZERO_WINDOW');
    has(problems({ event: 'purchase', window: { from: '2026-01-02', to: '2026-01-02' } }), '/window', 'ZERO_WINDOW');
    has(problems({ bucket: { from: 10, to: 10 } }), '/bucket', 'ZERO_WINDOW');
    has(problems({ event: 'purchase', count: { op: 'gte', value: -1 } }), '/count/value', 'INVALID_VALUE');
  });

  it('nesting deeper than 32 levels is refused at the node that goes too deep', () => {
    let deep: Segment = { audience: 'churned' };
    for (let i = 0; i < 32; i++) deep = { not: deep };
    const list = problems(deep);
    has(list, `${'/not'.repeat(32)}`, 'TOO_DEEP');
    let ok: Segment = { audience: 'churned' };
    for (let i = 0; i < 31; i++) ok = { not: ok };
    assert.equal(checkSegment(ok, ctx).ok, true, '32 levels are fine');
  });

  it('an unknown audience is an error; an event not seen yet is a warning', () => {
    has(problems({ or: [{ audience: 'nobody' }] }), '/or/0/audience', 'UNKNOWN_AUDIENCE');
    const r = checkSegment({ event: 'subscribed_to_newsletter' }, ctx);
    assert.equal(r.ok, true);
    assert.deepEqual(r.warnings.map((w) => [w.path, w.code]), [['/event', 'EVENT_NOT_SEEN']]);
  });

  it('references to saved segments: unknown ones and cycles are refused', () => {
    const saved = new Map<string, Segment>([
      ['seg_a', { and: [{ audience: 'churned' }, { segment: 'seg_b' }] }],
      ['seg_b', { not: { segment: 'seg_a' } }],
      ['seg_c', { audience: 'churned' }],
    ]);
    const withSaved = (selfId?: string): SegmentContext => ({
      ...ctx,
      savedSegment: (ref) => (saved.has(ref) ? { id: ref, segment: saved.get(ref)! } : undefined),
      ...(selfId ? { selfId } : {}),
    });
    assert.equal(checkSegment({ segment: 'seg_c' }, withSaved()).ok, true);
    has(problems({ segment: 'seg_x' }, withSaved()), '/segment', 'UNKNOWN_SEGMENT');
    has(problems({ or: [{ segment: 'seg_a' }] }, withSaved()), '/or/0/segment', 'SEGMENT_CYCLE');
    has(problems({ segment: 'seg_c' }, withSaved('seg_c')), '/segment', 'SEGMENT_CYCLE');
    const follow = (ref: string): Segment | undefined => saved.get(ref);
    assert.equal(evaluateSegment({ segment: 'seg_c' }, facts(), { nowMs: NOW, resolveSegment: follow }), true);
  });
});
