import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pointer, type Problem } from '../profiles/attribute-validation.ts';
import type { AttributeType } from '../profiles/profile-model.ts';
import type { Segment } from '../targeting/segment-model.ts';
import type { SegmentContext } from '../targeting/segment-validation.ts';
import { stepIndex, successors, type JourneyDefinition } from './journey-model.ts';
import { checkJourney, parseDuration, type JourneyContext } from './journey-validation.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const saved = new Map<string, Segment>([['vip', { attribute: 'plan', op: 'eq', value: 'vip' }]]);
const segment: SegmentContext = {
  attributeTypes: new Map<string, AttributeType>([['plan', 'string']]),
  knownEvents: new Set(['cart_abandoned', 'purchase']),
  audienceExists: (name) => name === 'churned',
  savedSegment: (ref) => (saved.has(ref) ? { id: ref, segment: saved.get(ref)! } : undefined),
};
const templates = new Map([
  ['cart_reminder', 'push'],
  ['tpl_cart_email', 'email'],
  ['cart_email', 'email'],
]);
const ctx: JourneyContext = { segment, templateChannel: (ref) => templates.get(ref) };
/** A push content checker standing in for delivery's: a push needs a body. */
const withContent: JourneyContext = {
  ...ctx,
  checkContent: (channel, content, path, problems) => {
    if (channel === 'push' && typeof (content as { body?: unknown }).body !== 'string')
      problems.push({ path: pointer(path, 'body'), code: 'REQUIRED', message: 'a push needs a body' });
  },
};

const noPurchaseInADay = { not: { event: 'purchase', window: { last_days: 1 } } };

/** Cart abandonment: wait 1h → no purchase? → push → wait 1d → still none? → email → exit. */
function cart(): any {
  return {
    name: 'Cart abandonment',
    entry: { event: 'cart_abandoned', where: [{ attribute: 'total', op: 'gte', value: 20 }] },
    exit_events: [{ event: 'purchase' }],
    steps: [
      { id: 'wait1', type: 'wait', duration: '1h', next: 'check1' },
      { id: 'check1', type: 'branch', condition: noPurchaseInADay, then: 'push1', else: 'done' },
      { id: 'push1', type: 'send', channel: 'push', template: 'cart_reminder', next: 'wait2' },
      { id: 'wait2', type: 'wait', duration: '1d', next: 'check2' },
      { id: 'check2', type: 'branch', condition: noPurchaseInADay, then: 'email1', else: 'done' },
      {
        id: 'email1',
        type: 'send',
        channel: 'email',
        template: 'cart_email',
        category: 'marketing',
        next: 'done',
      },
      { id: 'done', type: 'exit' },
    ],
  };
}
/** The cart journey after `change`. */
const edited = (change: (j: any) => void): any => {
  const j = cart();
  change(j);
  return j;
};

function passes(input: unknown, c: JourneyContext = ctx): JourneyDefinition {
  const r = checkJourney(input, c);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return r.journey;
}
function problems(input: unknown, c: JourneyContext = ctx): Problem[] {
  const r = checkJourney(input, c);
  assert.equal(r.ok, false, `expected problems for ${JSON.stringify(input)?.slice(0, 300)}`);
  return r.ok ? [] : r.problems;
}
function has(list: Problem[], path: string, code: string): Problem {
  const found = list.find((p) => p.path === path && p.code === code);
  assert.ok(found, `${code} at ${path} in ${JSON.stringify(list)}`);
  return found;
}

describe('journey definitions: a valid journey', () => {
  it('the cart-abandonment journey passes, with defaults filled in and durations in ms', () => {
    const r = checkJourney(cart(), ctx);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    assert.deepEqual(r.warnings, []);
    const j = r.journey;
    assert.equal(j.start, 'wait1');
    assert.deepEqual(j.re_entry, { policy: 'once' });
    assert.deepEqual(j.freshness, { late_after: '1h', lateAfterMs: HOUR, on_late: 'send' });
    assert.deepEqual(j.entry, cart().entry);
    assert.deepEqual(j.exit_events, [{ event: 'purchase' }]);
    assert.deepEqual(j.steps[0], {
      id: 'wait1',
      type: 'wait',
      duration: '1h',
      durationMs: HOUR,
      next: 'check1',
    });
    assert.deepEqual(j.steps[2], {
      id: 'push1',
      type: 'send',
      channel: 'push',
      category: 'marketing',
      template: 'cart_reminder',
      next: 'wait2',
    });
    assert.equal((j.steps[3] as { durationMs: number }).durationMs, DAY);
    assert.deepEqual(j.steps[6], { id: 'done', type: 'exit' });
  });

  it('explicit options are kept: start, re-entry window, freshness, a local time, wait_for_event, inline content', () => {
    const j = passes(
      {
        name: 'Welcome',
        entry: { segment: { segment: 'vip' } },
        re_entry: { policy: 'once_per', window: '7d' },
        freshness: { late_after: '30m', on_late: 'expire' },
        start: 'morning',
        steps: [
          {
            id: 'thanks',
            type: 'send',
            channel: 'push',
            content: { body: 'Thanks!' },
            category: 'transactional',
          },
          { id: 'morning', type: 'wait', until: '09:30', next: 'w' },
          {
            id: 'w',
            type: 'wait_for_event',
            event: 'purchase',
            where: [{ attribute: 'total', op: 'gt', value: 0 }],
            timeout: '2w',
            next: 'thanks',
            timeout_next: 'nudge',
          },
          { id: 'nudge', type: 'send', channel: 'email', template: 'tpl_cart_email' },
        ],
      },
      withContent,
    );
    assert.equal(j.start, 'morning');
    assert.deepEqual(j.re_entry, { policy: 'once_per', window: '7d', windowMs: 7 * DAY });
    assert.deepEqual(j.freshness, { late_after: '30m', lateAfterMs: 30 * 60_000, on_late: 'expire' });
    assert.deepEqual(j.steps[0], {
      id: 'thanks',
      type: 'send',
      channel: 'push',
      category: 'transactional',
      content: { body: 'Thanks!' },
    });
    assert.deepEqual(j.steps[1], {
      id: 'morning',
      type: 'wait',
      until: '09:30',
      untilMinuteOfDay: 570,
      next: 'w',
    });
    assert.equal((j.steps[2] as { timeoutMs: number }).timeoutMs, 14 * DAY);
    assert.equal('next' in j.steps[3]!, false, 'a send without next exits after sending');
  });

  it('stepIndex and successors follow the normalised graph', () => {
    const j = passes(cart());
    const index = stepIndex(j);
    assert.deepEqual([...index.keys()], ['wait1', 'check1', 'push1', 'wait2', 'check2', 'email1', 'done']);
    assert.deepEqual(successors(index.get('check1')!), ['push1', 'done']);
    assert.deepEqual(successors(index.get('push1')!), ['wait2']);
    assert.deepEqual(successors(index.get('done')!), []);
  });

  it('parseDuration: a positive whole number and one unit, nothing else', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('1h'), HOUR);
    assert.equal(parseDuration('7d'), 7 * DAY);
    assert.equal(parseDuration('2w'), 14 * DAY);
    for (const bad of [
      '',
      '0s',
      '01h',
      '1.5h',
      '-1h',
      '1 h',
      '1H',
      'h',
      '1',
      '1hm',
      ' 1h',
      '99999999999999999999w',
    ]) {
      assert.equal(parseDuration(bad), null, bad);
    }
  });

  it('events not seen yet are warnings at their paths, exactly as checkSegment reports them', () => {
    const r = checkJourney(
      edited((j) => {
        j.exit_events.push({ event: 'unsubscribed' });
        j.steps[6] = {
          id: 'done',
          type: 'wait_for_event',
          event: 'review_left',
          timeout: '1d',
          next: 'end',
          timeout_next: 'end',
        };
        j.steps.push({ id: 'end', type: 'exit' });
      }),
      ctx,
    );
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.warnings.map((w) => [w.path, w.code]),
      [
        ['/exit_events/1/event', 'EVENT_NOT_SEEN'],
        ['/steps/6/event', 'EVENT_NOT_SEEN'],
      ],
    );
  });

  it('paths are relative to basePath', () => {
    const r = checkJourney(
      edited((j) => (j.steps[0].next = 'nowhere')),
      ctx,
      '/automation',
    );
    assert.equal(r.ok, false);
    has(r.ok ? [] : r.problems, '/automation/steps/0/next', 'UNKNOWN_STEP');
  });
});

describe('journey definitions: what is refused', () => {
  it('unknown fields, anywhere', () => {
    has(problems(edited((j) => (j.colour = 'red'))), '/colour', 'UNKNOWN_FIELD');
    has(problems(edited((j) => (j.entry.count = 2))), '/entry/count', 'UNKNOWN_FIELD');
    has(
      problems(edited((j) => (j.exit_events[0].window = { last_days: 1 }))),
      '/exit_events/0/window',
      'UNKNOWN_FIELD',
    );
    has(
      problems(edited((j) => (j.re_entry = { policy: 'once', every: 1 }))),
      '/re_entry/every',
      'UNKNOWN_FIELD',
    );
    has(
      problems(edited((j) => (j.freshness = { late_after: '1h', drop: true }))),
      '/freshness/drop',
      'UNKNOWN_FIELD',
    );
    // A field of another step type is still unknown here.
    has(
      problems(edited((j) => (j.steps[0].template = 'cart_reminder'))),
      '/steps/0/template',
      'UNKNOWN_FIELD',
    );
    has(problems(edited((j) => (j.steps[6].next = 'wait1'))), '/steps/6/next', 'UNKNOWN_FIELD');
  });

  it('types and required fields', () => {
    has(problems(edited((j) => (j.name = 7))), '/name', 'INVALID_TYPE');
    has(problems(edited((j) => delete j.name)), '/name', 'REQUIRED');
    has(problems(edited((j) => delete j.entry)), '/entry', 'REQUIRED');
    has(problems(edited((j) => (j.steps = { wait1: {} }))), '/steps', 'INVALID_TYPE');
    has(problems(edited((j) => (j.steps[3] = 'wait'))), '/steps/3', 'INVALID_TYPE');
    has(problems(edited((j) => (j.steps[3].type = 'sleep'))), '/steps/3/type', 'INVALID_VALUE');
    has(problems(edited((j) => delete j.steps[3].type)), '/steps/3/type', 'REQUIRED');
    has(problems(edited((j) => (j.steps[0].next = 3))), '/steps/0/next', 'INVALID_TYPE');
    has(problems(edited((j) => delete j.steps[1].else)), '/steps/1/else', 'REQUIRED');
    has(problems(edited((j) => (j.exit_events = { event: 'purchase' }))), '/exit_events', 'INVALID_TYPE');
    has(problems(edited((j) => (j.start = 4))), '/start', 'INVALID_TYPE');
  });

  it('a name of 1 to 100 characters; 1 to 100 steps', () => {
    has(problems(edited((j) => (j.name = ''))), '/name', 'INVALID_LENGTH');
    has(problems(edited((j) => (j.name = 'x'.repeat(101)))), '/name', 'INVALID_LENGTH');
    passes(edited((j) => (j.name = 'x'.repeat(100))));
    has(problems(edited((j) => (j.steps = []))), '/steps', 'TOO_FEW_ITEMS');
    const many = Array.from({ length: 101 }, (_, i) => ({
      id: `s${i}`,
      type: 'wait',
      duration: '1h',
      next: `s${i + 1}`,
    }));
    has(problems(edited((j) => (j.steps = many))), '/steps', 'TOO_MANY_ITEMS');
    const hundred = [...many.slice(0, 99), { id: 's99', type: 'exit' }];
    assert.equal(passes(edited((j) => (j.steps = hundred))).steps.length, 100);
  });

  it('step ids: letters, digits, "_" and "-", at most 64, unique', () => {
    has(problems(edited((j) => (j.steps[6].id = 'all done'))), '/steps/6/id', 'INVALID_VALUE');
    has(problems(edited((j) => (j.steps[6].id = 'x'.repeat(65)))), '/steps/6/id', 'INVALID_VALUE');
    has(problems(edited((j) => delete j.steps[6].id)), '/steps/6/id', 'REQUIRED');
    const dup = has(problems(edited((j) => (j.steps[3].id = 'wait1'))), '/steps/3/id', 'DUPLICATE_STEP');
    assert.match(dup.message, /\/steps\/0/);
    passes(edited((j) => j.steps.forEach((s: any) => (s.id = s.id.toUpperCase()) && renameRefs(s))));
  });

  it('every next, then, else, timeout_next and start names an existing step', () => {
    has(problems(edited((j) => (j.steps[0].next = 'chek1'))), '/steps/0/next', 'UNKNOWN_STEP');
    has(problems(edited((j) => (j.steps[1].then = 'push9'))), '/steps/1/then', 'UNKNOWN_STEP');
    has(problems(edited((j) => (j.steps[1].else = 'gone'))), '/steps/1/else', 'UNKNOWN_STEP');
    has(problems(edited((j) => (j.steps[2].next = 'gone'))), '/steps/2/next', 'UNKNOWN_STEP');
    has(problems(edited((j) => (j.start = 'begin'))), '/start', 'UNKNOWN_STEP');
    const waitFor = {
      id: 'w',
      type: 'wait_for_event',
      event: 'purchase',
      timeout: '1d',
      next: 'done',
      timeout_next: 'nope',
    };
    has(
      problems(edited((j) => ((j.steps[6] = waitFor), j.steps.push({ id: 'done', type: 'exit' })))),
      '/steps/6/timeout_next',
      'UNKNOWN_STEP',
    );
  });

  it('a step not reachable from the start is refused at its index', () => {
    const orphan = has(
      problems(edited((j) => j.steps.push({ id: 'orphan', type: 'exit' }))),
      '/steps/7',
      'UNREACHABLE_STEP',
    );
    assert.match(orphan.message, /orphan/);
    // Starting later leaves the first step behind.
    has(problems(edited((j) => (j.start = 'check1'))), '/steps/0', 'UNREACHABLE_STEP');
    // A misspelt next is reported alone, not also as the step it meant being unreachable.
    const list = problems(edited((j) => (j.steps[0].next = 'chek1')));
    assert.deepEqual(
      list.map((p) => p.code),
      ['UNKNOWN_STEP'],
    );
  });

  it('a loop through a wait (or a wait for an event) is allowed', () => {
    // Start over after the email: email1 → wait1 → check1 → push1 → wait2 → check2 → email1 …
    passes(edited((j) => (j.steps[5].next = 'wait1')));
    passes({
      name: 'Until they buy',
      entry: { event: 'cart_abandoned' },
      steps: [
        {
          id: 'w',
          type: 'wait_for_event',
          event: 'purchase',
          timeout: '1d',
          next: 'done',
          timeout_next: 'push',
        },
        { id: 'push', type: 'send', channel: 'push', template: 'cart_reminder', next: 'w' },
        { id: 'done', type: 'exit' },
      ],
    });
  });

  it('a loop with no wait is refused at a step on it, naming the loop', () => {
    const loop = has(problems(edited((j) => (j.steps[2].next = 'check1'))), '/steps/1', 'CYCLE_WITHOUT_WAIT');
    assert.match(loop.message, /check1 → push1 → check1/);
    const self = has(problems(edited((j) => (j.steps[1].else = 'check1'))), '/steps/1', 'CYCLE_WITHOUT_WAIT');
    assert.match(self.message, /check1 → check1/);
    // Found even where the start never leads.
    const island = [
      { id: 'a', type: 'send', channel: 'push', template: 'cart_reminder', next: 'b' },
      { id: 'b', type: 'branch', condition: noPurchaseInADay, then: 'a', else: 'a' },
    ];
    const list = problems(edited((j) => j.steps.push(...island)));
    assert.match(has(list, '/steps/7', 'CYCLE_WITHOUT_WAIT').message, /a → b → a/);
    has(list, '/steps/7', 'UNREACHABLE_STEP');
  });

  it('event names: non-empty, at most 200 characters; where checked by checkSegment at its path', () => {
    has(problems(edited((j) => (j.entry.event = ''))), '/entry/event', 'INVALID_VALUE');
    const long = problems(edited((j) => (j.exit_events[0].event = 'e'.repeat(201))));
    has(long, '/exit_events/0/event', 'INVALID_LENGTH');
    assert.equal(long.length, 1, 'one problem for a long name, not also checkSegment’s');
    has(problems(edited((j) => (j.entry.where[0].op = 'like'))), '/entry/where/0/op', 'INVALID_VALUE');
    has(problems(edited((j) => (j.entry.where = []))), '/entry/where', 'INVALID_TYPE');
    has(
      problems(
        edited((j) => (j.exit_events[0].where = [{ attribute: 'sku', op: 'between', value: [9, 1] }])),
      ),
      '/exit_events/0/where/0/value',
      'INVALID_VALUE',
    );
    const waitFor = {
      id: 'done',
      type: 'wait_for_event',
      where: [{ attribute: 'sku', op: 'exists', value: 1 }],
      timeout: '1d',
      next: 'end',
      timeout_next: 'end',
    };
    const list = problems(edited((j) => ((j.steps[6] = waitFor), j.steps.push({ id: 'end', type: 'exit' }))));
    has(list, '/steps/6/event', 'REQUIRED');
    has(list, '/steps/6/where/0/value', 'UNEXPECTED_VALUE');
  });

  it('entry: exactly one of event or segment; a segment entry and branch conditions are checked by checkSegment', () => {
    has(
      problems(edited((j) => (j.entry = { event: 'cart_abandoned', segment: { segment: 'vip' } }))),
      '/entry',
      'EVENT_OR_SEGMENT',
    );
    has(problems(edited((j) => (j.entry = {}))), '/entry', 'EVENT_OR_SEGMENT');
    assert.deepEqual(passes(edited((j) => (j.entry = { segment: { audience: 'churned' } }))).entry, {
      segment: { audience: 'churned' },
    });
    has(
      problems(edited((j) => (j.entry = { segment: { segment: 'big_spenders' } }))),
      '/entry/segment/segment',
      'UNKNOWN_SEGMENT',
    );
    has(problems(edited((j) => (j.entry = { segment: 'vip' }))), '/entry/segment', 'INVALID_TYPE');
    has(
      problems(edited((j) => (j.steps[4].condition = { and: [noPurchaseInADay, { audience: 'nobody' }] }))),
      '/steps/4/condition/and/1/audience',
      'UNKNOWN_AUDIENCE',
    );
    has(
      problems(edited((j) => (j.steps[1].condition = { plan: 'vip' }))),
      '/steps/1/condition',
      'MALFORMED_SEGMENT',
    );
    has(problems(edited((j) => delete j.steps[1].condition)), '/steps/1/condition', 'REQUIRED');
  });

  it('send: a valid channel and category; exactly one of template or content', () => {
    has(problems(edited((j) => (j.steps[2].channel = 'fax'))), '/steps/2/channel', 'INVALID_VALUE');
    has(problems(edited((j) => delete j.steps[2].channel)), '/steps/2/channel', 'REQUIRED');
    has(problems(edited((j) => (j.steps[2].category = 'promo'))), '/steps/2/category', 'INVALID_VALUE');
    has(problems(edited((j) => (j.steps[2].content = { body: 'hi' }))), '/steps/2', 'TEMPLATE_OR_CONTENT');
    has(problems(edited((j) => delete j.steps[2].template)), '/steps/2', 'TEMPLATE_OR_CONTENT');
    const inline = (content: unknown) =>
      edited((j) => (j.steps[2] = { id: 'push1', type: 'send', channel: 'push', content, next: 'wait2' }));
    has(problems(inline('Come back!')), '/steps/2/content', 'INVALID_TYPE');
    passes(inline({ title: 'anything' }), ctx);
    has(problems(inline({ title: 'no body' }), withContent), '/steps/2/content/body', 'REQUIRED');
  });

  it('send: the template must exist and be for the step’s channel', () => {
    const missing = has(
      problems(edited((j) => (j.steps[2].template = 'cart_remindr'))),
      '/steps/2/template',
      'TEMPLATE_NOT_FOUND',
    );
    assert.match(missing.message, /cart_remindr/);
    const mismatch = has(
      problems(edited((j) => (j.steps[2].template = 'tpl_cart_email'))),
      '/steps/2/template',
      'TEMPLATE_CHANNEL_MISMATCH',
    );
    assert.match(mismatch.message, /email, not push/);
    has(problems(edited((j) => (j.steps[2].template = ''))), '/steps/2/template', 'INVALID_TYPE');
  });

  it('durations: whole units, at most 365 days; a wait has exactly one of duration or until, a strict HH:MM', () => {
    has(problems(edited((j) => (j.steps[0].duration = '0h'))), '/steps/0/duration', 'INVALID_DURATION');
    has(problems(edited((j) => (j.steps[0].duration = 3600))), '/steps/0/duration', 'INVALID_DURATION');
    has(problems(edited((j) => (j.steps[0].duration = '366d'))), '/steps/0/duration', 'DURATION_TOO_LONG');
    has(problems(edited((j) => (j.steps[0].duration = '53w'))), '/steps/0/duration', 'DURATION_TOO_LONG');
    passes(edited((j) => (j.steps[0].duration = '365d')));
    has(problems(edited((j) => (j.steps[0].until = '09:00'))), '/steps/0', 'DURATION_OR_UNTIL');
    has(problems(edited((j) => delete j.steps[0].duration)), '/steps/0', 'DURATION_OR_UNTIL');
    for (const bad of ['9:00', '24:00', '09:60', '09:00:00', 'noon']) {
      has(
        problems(edited((j) => (j.steps[0] = { id: 'wait1', type: 'wait', until: bad, next: 'check1' }))),
        '/steps/0/until',
        'INVALID_TIME',
      );
    }
    const waitFor = {
      id: 'done',
      type: 'wait_for_event',
      event: 'purchase',
      next: 'end',
      timeout_next: 'end',
    };
    has(
      problems(edited((j) => ((j.steps[6] = waitFor), j.steps.push({ id: 'end', type: 'exit' })))),
      '/steps/6/timeout',
      'REQUIRED',
    );
  });

  it('re-entry: a window for once_per only; freshness: a duration and send or expire', () => {
    has(problems(edited((j) => (j.re_entry = { policy: 'once_per' }))), '/re_entry/window', 'REQUIRED');
    has(
      problems(edited((j) => (j.re_entry = { policy: 'once_per', window: '400d' }))),
      '/re_entry/window',
      'DURATION_TOO_LONG',
    );
    has(
      problems(edited((j) => (j.re_entry = { policy: 'always', window: '7d' }))),
      '/re_entry/window',
      'UNEXPECTED_VALUE',
    );
    has(problems(edited((j) => (j.re_entry = { policy: 'sometimes' }))), '/re_entry/policy', 'INVALID_VALUE');
    has(problems(edited((j) => (j.re_entry = {}))), '/re_entry/policy', 'REQUIRED');
    has(problems(edited((j) => (j.re_entry = 'once'))), '/re_entry', 'INVALID_TYPE');
    assert.deepEqual(passes(edited((j) => (j.re_entry = { policy: 'always' }))).re_entry, {
      policy: 'always',
    });
    has(
      problems(edited((j) => (j.freshness = { late_after: 'soon' }))),
      '/freshness/late_after',
      'INVALID_DURATION',
    );
    has(problems(edited((j) => (j.freshness = { on_late: 'drop' }))), '/freshness/on_late', 'INVALID_VALUE');
    assert.deepEqual(passes(edited((j) => (j.freshness = { on_late: 'expire' }))).freshness, {
      late_after: '1h',
      lateAfterMs: HOUR,
      on_late: 'expire',
    });
  });
});

describe('journey definitions: garbage never throws', () => {
  const deep = (levels: number, wrap: (inner: unknown) => unknown): unknown => {
    let v: unknown = 'x';
    for (let i = 0; i < levels; i++) v = wrap(v);
    return v;
  };
  const junk: unknown[] = [
    null,
    undefined,
    0,
    -1,
    1.5,
    NaN,
    true,
    '',
    'x',
    '1h',
    [],
    [null],
    {},
    { a: { b: [] } },
    deep(10_000, (v) => [v]),
    deep(10_000, (v) => ({ not: v })),
    deep(10_000, (v) => ({ and: [v] })),
    JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}'),
  ];

  function wellFormed(r: ReturnType<typeof checkJourney>, label: string): void {
    const all = [...(r.ok ? [] : r.problems), ...r.warnings];
    assert.ok(r.ok || r.problems.length > 0, label);
    for (const p of all) {
      assert.ok(p.path === '' || p.path.startsWith('/'), `${label}: path ${p.path}`);
      assert.match(p.code, /^[A-Z_]+$/, label);
      assert.ok(p.message.length > 0, label);
    }
  }

  it('top-level garbage is one INVALID_TYPE at the root', () => {
    for (const v of [null, undefined, 42, 'journey', [], [cart()], true]) {
      const list = problems(v);
      assert.deepEqual(
        list.map((p) => [p.path, p.code]),
        [['', 'INVALID_TYPE']],
      );
    }
  });

  it('steps of every wrong shape, including names of Object.prototype', () => {
    const list = problems({
      name: 'junk',
      entry: { event: 'purchase' },
      steps: [
        null,
        1,
        'wait',
        [],
        { type: 'constructor', id: 'a' },
        { type: '__proto__', id: 'b' },
        { type: 'toString' },
        { type: 'hasOwnProperty', id: 'c', next: 'a' },
      ],
    });
    has(list, '/steps/0', 'INVALID_TYPE');
    has(list, '/steps/4/type', 'INVALID_VALUE');
    has(list, '/steps/6/type', 'INVALID_VALUE');
  });

  it('every field of the cart journey replaced by junk: no throw, well-formed problems', () => {
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, at: (string | number)[]): void => {
      if (at.length > 0) paths.push(at);
      if (v && typeof v === 'object')
        for (const [k, child] of Object.entries(v)) walk(child, [...at, Array.isArray(v) ? Number(k) : k]);
    };
    walk(cart(), []);
    assert.ok(paths.length > 50);
    let checked = 0;
    for (const at of paths) {
      for (const value of junk) {
        const j = cart();
        let parent = j;
        for (const k of at.slice(0, -1)) parent = parent[k];
        parent[at.at(-1)!] = value;
        const label = `${at.join('/')} = junk #${junk.indexOf(value)}`;
        wellFormed(checkJourney(j, withContent), label);
        checked++;
      }
    }
    assert.equal(checked, paths.length * junk.length);
  });
});

/** Keeps references consistent after the ids were upper-cased. */
function renameRefs(step: any): boolean {
  for (const k of ['next', 'then', 'else', 'timeout_next'])
    if (typeof step[k] === 'string') step[k] = step[k].toUpperCase();
  return true;
}
