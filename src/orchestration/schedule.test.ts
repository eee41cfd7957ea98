import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkCron,
  daysBetween,
  isLocalDate,
  isTimeOfDay,
  isValidZone,
  localDateOf,
  localToInstant,
  neverFires,
  nextLocalTime,
  nextOccurrence,
  parseDuration,
  quietHoursRelease,
  type QuietHours,
  type Recurrence,
} from './schedule.ts';

const NY = 'America/New_York';
const ms = (iso: string): number => Date.parse(iso);
const iso = (instantMs: number | null): string | null =>
  instantMs === null ? null : new Date(instantMs).toISOString();

/** The next `n` occurrences after `afterIso`, as ISO strings. */
function occurrences(rec: Recurrence, zone: string, afterIso: string, n: number): string[] {
  const out: string[] = [];
  let after = ms(afterIso);
  for (let i = 0; i < n; i++) {
    const next = nextOccurrence(rec, zone, after);
    assert.ok(next !== null && next > after, 'each occurrence is strictly after the previous one');
    out.push(iso(next) as string);
    after = next;
  }
  return out;
}

function cronMessage(expr: string): string {
  const result = checkCron(expr);
  assert.equal(result.ok, false, `"${expr}" should be rejected`);
  return result.ok ? '' : result.message;
}

describe('validation', () => {
  it('knows IANA zones and rejects unknown names and bare offsets', () => {
    for (const zone of [
      NY,
      'Europe/London',
      'Asia/Kolkata',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
      'UTC',
    ]) {
      assert.equal(isValidZone(zone), true, zone);
    }
    for (const zone of ['Mars/Base', '', '+05:30', 'Z', '2026-01-01T00:00[Europe/Paris]']) {
      assert.equal(isValidZone(zone), false, zone);
    }
  });

  it('accepts only strict HH:MM times', () => {
    for (const s of ['00:00', '09:05', '23:59']) assert.equal(isTimeOfDay(s), true, s);
    for (const s of ['24:00', '9:00', '09:60', '09:00:00', '0900', ' 09:00', ''])
      assert.equal(isTimeOfDay(s), false, s);
  });

  it('accepts only real YYYY-MM-DD dates', () => {
    for (const s of ['2026-01-01', '2028-02-29', '2026-12-31']) assert.equal(isLocalDate(s), true, s);
    for (const s of [
      '2026-02-29',
      '2026-04-31',
      '2026-13-01',
      '2026-1-01',
      '20260101',
      '2026-01-01T00:00',
      '',
    ]) {
      assert.equal(isLocalDate(s), false, s);
    }
  });
});

describe('localToInstant', () => {
  it('converts ordinary wall times in fixed and DST zones', () => {
    assert.equal(iso(localToInstant('2026-01-15', '09:00', NY)), '2026-01-15T14:00:00.000Z');
    assert.equal(iso(localToInstant('2026-07-15', '09:00', NY)), '2026-07-15T13:00:00.000Z');
    assert.equal(iso(localToInstant('2026-06-01', '09:00', 'Asia/Kolkata')), '2026-06-01T03:30:00.000Z');
    assert.equal(iso(localToInstant('2026-01-15', '09:00', 'Pacific/Chatham')), '2026-01-14T19:15:00.000Z'); // +13:45
    assert.equal(iso(localToInstant('2026-07-15', '09:00', 'Pacific/Chatham')), '2026-07-14T20:15:00.000Z'); // +12:45
  });

  it('moves a time skipped by spring forward past the gap (New York 02:30 → 03:30 EDT)', () => {
    assert.equal(iso(localToInstant('2026-03-08', '02:30', NY)), '2026-03-08T07:30:00.000Z');
    assert.equal(iso(localToInstant('2026-03-29', '01:30', 'Europe/London')), '2026-03-29T01:30:00.000Z'); // 02:30 BST
    // Lord Howe springs forward only 30 minutes (02:00 +10:30 → 02:30 +11:00): 02:15 becomes 02:45.
    assert.equal(
      iso(localToInstant('2026-10-04', '02:15', 'Australia/Lord_Howe')),
      '2026-10-03T15:45:00.000Z',
    );
    // Chatham skips 02:45–03:45 (+12:45 → +13:45).
    assert.equal(iso(localToInstant('2026-09-27', '03:00', 'Pacific/Chatham')), '2026-09-26T14:15:00.000Z');
  });

  it('takes the earlier instant of a time repeated by fall back', () => {
    assert.equal(iso(localToInstant('2026-11-01', '01:30', NY)), '2026-11-01T05:30:00.000Z'); // EDT, not 06:30Z
    assert.equal(iso(localToInstant('2026-10-25', '01:30', 'Europe/London')), '2026-10-25T00:30:00.000Z'); // BST
    assert.equal(
      iso(localToInstant('2026-04-05', '01:45', 'Australia/Lord_Howe')),
      '2026-04-04T14:45:00.000Z',
    ); // +11:00
  });

  it('rejects malformed input with a RangeError', () => {
    assert.throws(() => localToInstant('2026-02-30', '09:00', NY), RangeError);
    assert.throws(() => localToInstant('2026-02-01', '9:00', NY), RangeError);
    assert.throws(() => localToInstant('2026-02-01', '09:00', 'Mars/Base'), RangeError);
  });
});

describe('localDateOf', () => {
  it('gives the date on the local calendar, not the UTC one', () => {
    assert.equal(localDateOf(ms('2026-03-08T04:59:00Z'), NY), '2026-03-07');
    assert.equal(localDateOf(ms('2026-01-01T18:30:00Z'), 'Asia/Kolkata'), '2026-01-02');
    assert.equal(localDateOf(ms('2026-01-01T18:29:00Z'), 'Asia/Kolkata'), '2026-01-01');
    assert.equal(localDateOf(ms('2026-01-01T10:15:00Z'), 'Pacific/Chatham'), '2026-01-02'); // 00:00 +13:45
  });
});

describe('nextLocalTime', () => {
  it('is inclusive of fromMs and otherwise rolls to the next day', () => {
    assert.equal(iso(nextLocalTime(ms('2026-01-15T14:00:00Z'), '09:00', NY)), '2026-01-15T14:00:00.000Z');
    assert.equal(iso(nextLocalTime(ms('2026-01-15T14:00:00.001Z'), '09:00', NY)), '2026-01-16T14:00:00.000Z');
  });

  it('lands after the gap on the spring-forward day', () => {
    assert.equal(iso(nextLocalTime(ms('2026-03-07T12:00:00Z'), '02:30', NY)), '2026-03-08T07:30:00.000Z');
  });

  it('never returns the repeated wall time twice on the fall-back night', () => {
    const first = nextLocalTime(ms('2026-11-01T04:00:00Z'), '01:30', NY);
    assert.equal(iso(first), '2026-11-01T05:30:00.000Z');
    // 06:30Z is 01:30 EST, the second pass: skipped, the next one is the following night.
    assert.equal(iso(nextLocalTime(first + 1, '01:30', NY)), '2026-11-02T06:30:00.000Z');
  });
});

describe('checkCron', () => {
  it('accepts standard 5-field expressions', () => {
    for (const expr of [
      '* * * * *',
      '0 9 * * 1-5',
      '*/15 8-18 * * MON-FRI',
      '0 0 1,15 * *',
      '0 9 * * 7',
      '0 0 30 2 *',
    ]) {
      assert.deepEqual(checkCron(expr), { ok: true }, expr);
    }
  });

  it('rejects garbage, naming the field when it can', () => {
    assert.match(cronMessage(''), /exactly 5 fields/);
    assert.match(cronMessage('every day at nine'), /exactly 5 fields.*has 4/);
    assert.match(cronMessage('a b c d e'), /minute field "a" is not valid/);
    assert.match(cronMessage('0 9 1,,2 * *'), /day-of-month field "1,,2" is not valid/);
    assert.match(cronMessage('*/0 * * * *'), /minute field "\*\/0" is not valid/);
    assert.match(cronMessage('0 9 * * 5-1x'), /day-of-week field/);
  });

  it('rejects seconds and years forms', () => {
    assert.match(cronMessage('0 0 9 * * *'), /exactly 5 fields.*has 6\. Seconds and years are not supported/);
    assert.match(cronMessage('0 0 9 * * * 2026'), /has 7\. Seconds and years/);
  });

  it('says which value is out of range and what the range is', () => {
    assert.equal(
      cronMessage('60 * * * *'),
      'The minute field "60" has 60, but minute values go from 0 to 59.',
    );
    assert.match(cronMessage('0 24 * * *'), /hour field "24" has 24, but hour values go from 0 to 23/);
    assert.match(cronMessage('0 0 32 * *'), /day-of-month .* from 1 to 31/);
    assert.match(cronMessage('0 0 0 * *'), /day-of-month field "0" has 0/);
    assert.match(cronMessage('0 0 * 1-13 *'), /month field "1-13" has 13, but month values go from 1 to 12/);
    assert.match(
      cronMessage('0 0 * * 8'),
      /day-of-week field "8" has 8, but day-of-week values go from 0 to 7/,
    );
  });
});

describe('nextOccurrence', () => {
  it('keeps a daily 09:00 at 09:00 local across both New York DST changes', () => {
    const daily: Recurrence = { every: 'day', at: '09:00' };
    assert.deepEqual(occurrences(daily, NY, '2026-03-06T15:00:00Z', 3), [
      '2026-03-07T14:00:00.000Z', // EST
      '2026-03-08T13:00:00.000Z', // EDT from the spring-forward day
      '2026-03-09T13:00:00.000Z',
    ]);
    assert.deepEqual(occurrences(daily, NY, '2026-10-30T15:00:00Z', 3), [
      '2026-10-31T13:00:00.000Z',
      '2026-11-01T14:00:00.000Z', // EST from the fall-back day
      '2026-11-02T14:00:00.000Z',
    ]);
  });

  it('fires a daily time in the gap once, after the gap, and one in the overlap once', () => {
    assert.deepEqual(occurrences({ every: 'day', at: '02:30' }, NY, '2026-03-07T12:00:00Z', 2), [
      '2026-03-08T07:30:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
    assert.deepEqual(occurrences({ every: 'day', at: '01:30' }, NY, '2026-10-31T12:00:00Z', 2), [
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
  });

  it('is strictly after afterMs', () => {
    const daily: Recurrence = { every: 'day', at: '09:00' };
    assert.equal(iso(nextOccurrence(daily, 'UTC', ms('2026-01-01T09:00:00Z'))), '2026-01-02T09:00:00.000Z');
    assert.equal(
      iso(nextOccurrence(daily, 'UTC', ms('2026-01-01T08:59:59.999Z'))),
      '2026-01-01T09:00:00.000Z',
    );
    const cron: Recurrence = { cron: '0 9 * * *' };
    assert.equal(iso(nextOccurrence(cron, 'UTC', ms('2026-01-01T09:00:00Z'))), '2026-01-02T09:00:00.000Z');
    assert.equal(
      iso(nextOccurrence(cron, 'UTC', ms('2026-01-01T09:00:00.500Z'))),
      '2026-01-02T09:00:00.000Z',
    );
    assert.equal(
      iso(nextOccurrence(cron, 'UTC', ms('2026-01-01T08:59:59.999Z'))),
      '2026-01-01T09:00:00.000Z',
    );
  });

  it('fires weekly only on the chosen days, across the London clock change', () => {
    const weekly: Recurrence = { every: 'week', days: ['mon', 'wed', 'fri'], at: '18:00' };
    // Friday 27 March is GMT; Monday 30 March is BST.
    assert.deepEqual(occurrences(weekly, 'Europe/London', '2026-03-26T12:00:00Z', 4), [
      '2026-03-27T18:00:00.000Z',
      '2026-03-30T17:00:00.000Z',
      '2026-04-01T17:00:00.000Z',
      '2026-04-03T17:00:00.000Z',
    ]);
  });

  it('finds a weekly day a full week ahead when this week’s has passed', () => {
    const sundays: Recurrence = { every: 'week', days: ['sun'], at: '09:00' };
    assert.equal(
      iso(nextOccurrence(sundays, 'Asia/Kolkata', ms('2026-01-04T03:30:00Z'))),
      '2026-01-11T03:30:00.000Z',
    );
    assert.equal(nextOccurrence({ every: 'week', days: [], at: '09:00' }, NY, 0), null);
  });

  it('runs cron in the zone, keeping local time across DST', () => {
    assert.deepEqual(occurrences({ cron: '0 9 * * *' }, NY, '2026-03-06T15:00:00Z', 3), [
      '2026-03-07T14:00:00.000Z',
      '2026-03-08T13:00:00.000Z',
      '2026-03-09T13:00:00.000Z',
    ]);
    assert.deepEqual(occurrences({ cron: '0 9 * * *' }, 'Asia/Kolkata', '2026-06-01T00:00:00Z', 1), [
      '2026-06-01T03:30:00.000Z',
    ]);
    assert.deepEqual(occurrences({ cron: '0 9 * * *' }, 'Pacific/Chatham', '2026-01-01T00:00:00Z', 1), [
      '2026-01-01T19:15:00.000Z',
    ]);
  });

  it('runs a fixed-time cron job once at the end of a gap and once in an overlap', () => {
    assert.deepEqual(occurrences({ cron: '30 2 * * *' }, NY, '2026-03-07T12:00:00Z', 2), [
      '2026-03-08T07:00:00.000Z', // 03:00 EDT, when the gap ends
      '2026-03-09T06:30:00.000Z',
    ]);
    assert.deepEqual(occurrences({ cron: '30 1 * * *' }, NY, '2026-10-31T12:00:00Z', 2), [
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
    // A list of hours is fixed-time too (Vixie cron), so its 02:00 run is not lost.
    assert.deepEqual(occurrences({ cron: '0 2,14 * * *' }, NY, '2026-03-08T00:00:00Z', 2), [
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T18:00:00.000Z',
    ]);
  });

  it('runs an interval cron job by real time through the fall-back overlap', () => {
    assert.deepEqual(occurrences({ cron: '*/30 * * * *' }, NY, '2026-11-01T05:00:00Z', 4), [
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T06:30:00.000Z', // 01:30 EST
      '2026-11-01T07:00:00.000Z',
    ]);
  });

  it('ORs day-of-month and day-of-week when both are restricted', () => {
    // 1 January 2026 is a Thursday: Fridays 2, 9, 16 and the 13th (a Tuesday).
    assert.deepEqual(occurrences({ cron: '0 0 13 * 5' }, 'UTC', '2026-01-01T00:00:00Z', 4), [
      '2026-01-02T00:00:00.000Z',
      '2026-01-09T00:00:00.000Z',
      '2026-01-13T00:00:00.000Z',
      '2026-01-16T00:00:00.000Z',
    ]);
    assert.deepEqual(occurrences({ cron: '0 0 * * 5' }, 'UTC', '2026-01-01T00:00:00Z', 2), [
      '2026-01-02T00:00:00.000Z',
      '2026-01-09T00:00:00.000Z',
    ]);
  });

  it('respects inclusive start and end bounds', () => {
    const daily: Recurrence = { every: 'day', at: '09:00' };
    const after = ms('2026-01-01T00:00:00Z');
    const startMs = ms('2026-01-10T09:00:00Z');
    assert.equal(iso(nextOccurrence(daily, 'UTC', after, { startMs })), '2026-01-10T09:00:00.000Z');
    assert.equal(
      iso(nextOccurrence(daily, 'UTC', after, { startMs: startMs + 1 })),
      '2026-01-11T09:00:00.000Z',
    );
    assert.equal(
      iso(nextOccurrence(daily, 'UTC', after, { endMs: ms('2026-01-01T09:00:00Z') })),
      '2026-01-01T09:00:00.000Z',
    );
    assert.equal(nextOccurrence(daily, 'UTC', after, { endMs: ms('2026-01-01T08:59:59Z') }), null);
    assert.equal(nextOccurrence(daily, 'UTC', after, { startMs, endMs: startMs - 1 }), null);
    // afterMs later than startMs wins.
    assert.equal(iso(nextOccurrence(daily, 'UTC', startMs, { startMs })), '2026-01-11T09:00:00.000Z');
    const cron: Recurrence = { cron: '0 9 * * 1' };
    assert.equal(
      iso(nextOccurrence(cron, NY, after, { startMs: ms('2026-03-03T00:00:00Z') })),
      '2026-03-09T13:00:00.000Z',
    );
    assert.equal(nextOccurrence(cron, NY, after, { endMs: ms('2026-01-05T13:59:00Z') }), null);
  });

  it('throws a RangeError for an unknown zone or a bad expression', () => {
    assert.throws(() => nextOccurrence({ every: 'day', at: '09:00' }, 'Mars/Base', 0), RangeError);
    assert.throws(() => nextOccurrence({ cron: '0 9 * *' }, 'UTC', 0), {
      name: 'RangeError',
      message: /5 fields/,
    });
    assert.throws(() => nextOccurrence({ every: 'day', at: '25:00' }, 'UTC', 0), RangeError);
  });
});

describe('neverFires', () => {
  const from = ms('2026-01-01T00:00:00Z');

  it('detects impossible cron dates', () => {
    assert.equal(neverFires({ cron: '0 0 30 2 *' }, 'UTC', from), true);
    assert.equal(neverFires({ cron: '0 0 31 4,6,9,11 *' }, NY, from), true);
  });

  it('detects weekly rules with no days and an end before the first occurrence', () => {
    assert.equal(neverFires({ every: 'week', days: [], at: '09:00' }, NY, from), true);
    assert.equal(
      neverFires({ every: 'day', at: '09:00' }, 'UTC', from, { endMs: ms('2026-01-01T08:59:00Z') }),
      true,
    );
    // 29 February comes round only in 2028.
    assert.equal(
      neverFires({ cron: '0 0 29 2 *' }, 'UTC', from, { endMs: ms('2027-12-31T00:00:00Z') }),
      true,
    );
  });

  it('is false for rules that fire, counting an occurrence exactly at fromMs', () => {
    assert.equal(neverFires({ every: 'day', at: '09:00' }, NY, from), false);
    assert.equal(neverFires({ every: 'week', days: ['sat'], at: '23:59' }, 'Pacific/Chatham', from), false);
    assert.equal(neverFires({ cron: '0 0 29 2 *' }, 'UTC', from), false);
    const nine = ms('2026-01-01T09:00:00Z');
    assert.equal(neverFires({ every: 'day', at: '09:00' }, 'UTC', nine, { endMs: nine }), false);
  });
});

describe('quietHoursRelease', () => {
  const night: QuietHours = { start: '21:00', end: '08:00' };

  it('holds messages through a window spanning midnight in New York', () => {
    const morning = '2026-01-16T13:00:00.000Z'; // 08:00 EST
    assert.equal(iso(quietHoursRelease(ms('2026-01-16T03:30:00Z'), NY, night)), morning); // 22:30, before midnight
    assert.equal(iso(quietHoursRelease(ms('2026-01-16T07:00:00Z'), NY, night)), morning); // 02:00, after midnight
    assert.equal(iso(quietHoursRelease(ms('2026-01-16T02:00:00Z'), NY, night)), morning); // exactly 21:00: inside
    assert.equal(iso(quietHoursRelease(ms('2026-01-16T12:59:00Z'), NY, night)), morning); // 07:59
    assert.equal(quietHoursRelease(ms('2026-01-16T13:00:00Z'), NY, night), null); // exactly 08:00: outside
    assert.equal(quietHoursRelease(ms('2026-01-15T17:00:00Z'), NY, night), null); // noon
    assert.equal(quietHoursRelease(ms('2026-01-16T01:59:00Z'), NY, night), null); // 20:59
  });

  it('holds messages through a window spanning midnight in Kolkata', () => {
    const quiet: QuietHours = { start: '22:00', end: '07:00' };
    const morning = '2026-06-02T01:30:00.000Z'; // 07:00 IST
    assert.equal(iso(quietHoursRelease(ms('2026-06-01T17:30:00Z'), 'Asia/Kolkata', quiet)), morning); // 23:00
    assert.equal(iso(quietHoursRelease(ms('2026-06-01T16:30:00Z'), 'Asia/Kolkata', quiet)), morning); // 22:00
    assert.equal(iso(quietHoursRelease(ms('2026-06-02T01:29:00Z'), 'Asia/Kolkata', quiet)), morning); // 06:59
    assert.equal(quietHoursRelease(ms('2026-06-02T01:30:00Z'), 'Asia/Kolkata', quiet), null); // 07:00
    assert.equal(quietHoursRelease(ms('2026-06-01T16:29:00Z'), 'Asia/Kolkata', quiet), null); // 21:59
  });

  it('handles a window within one day', () => {
    const lunch: QuietHours = { start: '12:00', end: '13:30' };
    assert.equal(
      iso(quietHoursRelease(ms('2026-01-15T12:45:00Z'), 'UTC', lunch)),
      '2026-01-15T13:30:00.000Z',
    );
    assert.equal(quietHoursRelease(ms('2026-01-15T13:30:00Z'), 'UTC', lunch), null);
    assert.equal(quietHoursRelease(ms('2026-01-15T23:00:00Z'), 'UTC', lunch), null);
  });

  it('releases at local 08:00 after a spring-forward or fall-back night', () => {
    assert.equal(iso(quietHoursRelease(ms('2026-03-08T06:59:00Z'), NY, night)), '2026-03-08T12:00:00.000Z'); // 01:59 EST → 08:00 EDT
    assert.equal(iso(quietHoursRelease(ms('2026-03-08T07:00:00Z'), NY, night)), '2026-03-08T12:00:00.000Z'); // 03:00 EDT
    assert.equal(iso(quietHoursRelease(ms('2026-11-01T06:30:00Z'), NY, night)), '2026-11-01T13:00:00.000Z'); // 01:30 EST
  });

  it('places an end that falls in a gap or overlap by the local-time rules', () => {
    // Ends at 02:30, which does not exist on 8 March: the window ends at 03:30 EDT.
    const toGap: QuietHours = { start: '22:00', end: '02:30' };
    assert.equal(iso(quietHoursRelease(ms('2026-03-08T06:00:00Z'), NY, toGap)), '2026-03-08T07:30:00.000Z');
    assert.equal(iso(quietHoursRelease(ms('2026-03-08T07:15:00Z'), NY, toGap)), '2026-03-08T07:30:00.000Z');
    // Ends at the first 01:30 on 1 November; the repeated hour after it is not quiet.
    const toOverlap: QuietHours = { start: '22:00', end: '01:30' };
    assert.equal(
      iso(quietHoursRelease(ms('2026-11-01T05:15:00Z'), NY, toOverlap)),
      '2026-11-01T05:30:00.000Z',
    );
    assert.equal(quietHoursRelease(ms('2026-11-01T06:15:00Z'), NY, toOverlap), null);
    // London: 01:30 on 29 March does not exist, so the window ends at 02:30 BST.
    const london: QuietHours = { start: '23:00', end: '01:30' };
    assert.equal(
      iso(quietHoursRelease(ms('2026-03-29T00:30:00Z'), 'Europe/London', london)),
      '2026-03-29T01:30:00.000Z',
    );
  });

  it('rejects a window that starts when it ends', () => {
    assert.throws(() => quietHoursRelease(0, NY, { start: '21:00', end: '21:00' }), RangeError);
  });
});

describe('daysBetween', () => {
  it('counts local calendar days, signed', () => {
    assert.equal(daysBetween('2026-03-01', '2026-03-08'), 7);
    assert.equal(daysBetween('2026-03-08', '2026-03-01'), -7);
    assert.equal(daysBetween('2026-03-08', '2026-03-08'), 0);
    assert.equal(daysBetween('2028-02-28', '2028-03-01'), 2);
    assert.equal(daysBetween('2026-12-31', '2027-01-01'), 1);
    assert.throws(() => daysBetween('2026-02-30', '2026-03-01'), RangeError);
  });
});

describe('parseDuration', () => {
  it('parses each unit', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('2w'), 1_209_600_000);
  });

  it('returns null for zero, malformed and oversized input', () => {
    for (const s of [
      '0s',
      '00m',
      '01h',
      '',
      'h',
      '5',
      '1.5h',
      '-1h',
      '+1h',
      ' 1h',
      '1h ',
      '1H',
      '1h30m',
      '1y',
      '99999999999w',
    ]) {
      assert.equal(parseDuration(s), null, JSON.stringify(s));
    }
  });
});
