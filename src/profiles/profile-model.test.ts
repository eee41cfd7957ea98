import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Problem } from './attribute-validation.ts';
import { inferAttributeType, validateAttributes } from './attribute-validation.ts';
import { applyAttributePatch, MAX_ARRAY_ITEMS, newProfile } from './profile-model.ts';

const T0 = Date.UTC(2026, 0, 1);

describe('attribute patches', () => {
  it('sets, deletes, and edits arrays with $remove before $add, without duplicates', () => {
    const p = newProfile({ projectId: 'p', customId: 'u' }, T0);
    applyAttributePatch(p, { natives: { language: 'fr' }, custom: { a: 1, tags: ['x', 'y'] } }, T0);
    applyAttributePatch(p, { natives: { language: null }, custom: { a: null, tags: { $remove: ['x'], $add: ['y', 'z'] } } }, T0 + 5);
    assert.deepEqual(p.attributes, { tags: ['y', 'z'] });
    assert.equal(p.natives.language, null);
    assert.equal(p.updatedAt, T0 + 5);
  });

  it('$add on a missing or non-array attribute starts a new array', () => {
    const p = newProfile({ projectId: 'p', customId: 'u' }, T0);
    applyAttributePatch(p, { natives: {}, custom: { n: 5 } }, T0);
    applyAttributePatch(p, { natives: {}, custom: { n: { $add: ['a'] }, m: { $add: ['b'] } } }, T0);
    assert.deepEqual(p.attributes, { n: ['a'], m: ['b'] });
  });

  it('keeps an array at most 100 items by dropping the oldest (the write was already acknowledged)', () => {
    const p = newProfile({ projectId: 'p', customId: 'u' }, T0);
    const first = Array.from({ length: MAX_ARRAY_ITEMS }, (_, i) => `v${i}`);
    applyAttributePatch(p, { natives: {}, custom: { list: first } }, T0);
    applyAttributePatch(p, { natives: {}, custom: { list: { $add: ['new1', 'new2'] } } }, T0);
    const list = p.attributes.list as string[];
    assert.equal(list.length, MAX_ARRAY_ITEMS);
    assert.deepEqual(list.slice(0, 1), ['v2']);
    assert.deepEqual(list.slice(-2), ['new1', 'new2']);
  });
});

describe('attribute validation', () => {
  it('normalises natives and typed strings', () => {
    const problems: Problem[] = [];
    const patch = validateAttributes(
      {
        $phone_number: '+1 (415) 555-0123',
        $region: 'gb',
        $language: 'PT-br',
        $email_address: ' ada@example.com',
        when: '2026-03-01T10:00:00+01:00',
        day: '2026-03-01',
      },
      '/attributes',
      problems,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(patch.natives, { phone: '+14155550123', region: 'GB', language: 'pt-BR', email: 'ada@example.com' });
    assert.deepEqual(patch.custom, { when: '2026-03-01T09:00:00.000Z', day: '2026-03-01' });
  });

  it('reports every problem with its path', () => {
    const problems: Problem[] = [];
    validateAttributes({ $nope: 1, 'Bad-Name': 1, $timezone: 'Mars/Olympus', ok: { $push: [] }, d: '2026-02-30' }, '/attributes', problems);
    assert.deepEqual(
      problems.map((p) => [p.path, p.code]),
      [
        ['/attributes/$nope', 'UNKNOWN_NATIVE_ATTRIBUTE'],
        ['/attributes/Bad-Name', 'INVALID_ATTRIBUTE_NAME'],
        ['/attributes/$timezone', 'INVALID_TIMEZONE'],
        ['/attributes/ok', 'INVALID_ATTRIBUTE_TYPE'],
        ['/attributes/d', 'INVALID_DATE'],
      ],
    );
  });

  it('types values the way targeting will compare them', () => {
    assert.equal(inferAttributeType('2026-01-01'), 'date');
    assert.equal(inferAttributeType('2026-01-01T00:00:00.000Z'), 'date');
    assert.equal(inferAttributeType('https://example.com'), 'url');
    assert.equal(inferAttributeType('hello'), 'string');
    assert.equal(inferAttributeType(3.5), 'number');
    assert.equal(inferAttributeType(false), 'boolean');
    assert.equal(inferAttributeType(['a']), 'array');
  });
});
