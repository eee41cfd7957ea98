import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sandboxSegments } from '../../../sandbox/sms/sms-sandbox-segments.ts';
import { countSegments } from './sms-segments.ts';

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENSION = '\f^{}\\[~]|€';

const seg = (text: string) => {
  const { encoding, segments } = countSegments(text);
  return [encoding, segments];
};

describe('SMS segment count (GSM 03.38, TS 23.040)', () => {
  it('fits 160 GSM-7 characters in one segment and splits the 161st into 153-septet parts', () => {
    assert.deepEqual(seg('a'.repeat(160)), ['GSM-7', 1]);
    assert.deepEqual(seg('a'.repeat(161)), ['GSM-7', 2]);
    assert.deepEqual(seg('a'.repeat(306)), ['GSM-7', 2]);
    assert.deepEqual(seg('a'.repeat(307)), ['GSM-7', 3]);
    assert.deepEqual(countSegments('a'.repeat(161)), {
      encoding: 'GSM-7',
      segments: 2,
      characters: 161,
      units: 161,
    });
  });

  it('keeps the whole basic alphabet, Greek capitals and accents included, in GSM-7', () => {
    const all = countSegments(GSM_BASIC);
    assert.equal(all.encoding, 'GSM-7');
    assert.equal(all.units, 127, 'the 128 code points minus ESC, one septet each');
  });

  it('counts extension characters (^{}\\[~]|€ and form feed) as two septets', () => {
    assert.deepEqual(countSegments(GSM_EXTENSION), {
      encoding: 'GSM-7',
      segments: 1,
      characters: 10,
      units: 20,
    });
    assert.deepEqual(seg('€'.repeat(80)), ['GSM-7', 1], '80 × 2 = 160 septets');
    assert.deepEqual(seg('€'.repeat(80) + 'a'), ['GSM-7', 2], '161 septets');
    assert.deepEqual(seg(`${'a'.repeat(159)}[`), ['GSM-7', 2], 'one character, but 161 septets');
  });

  it('never splits an escape pair across parts', () => {
    // 306 septets would fill two parts exactly, but the € straddles the first boundary.
    assert.deepEqual(seg(`${'a'.repeat(152)}€${'a'.repeat(152)}`), ['GSM-7', 3]);
    assert.deepEqual(
      seg(`${'a'.repeat(151)}€${'a'.repeat(153)}`),
      ['GSM-7', 2],
      'the € ends the first part exactly',
    );
  });

  it('makes the whole message UCS-2 for one character outside GSM-7: 70 units single, 67 per part', () => {
    assert.deepEqual(seg(`${'a'.repeat(69)}ç`), ['UCS-2', 1]);
    assert.deepEqual(seg(`${'a'.repeat(70)}ç`), ['UCS-2', 2]);
    assert.deepEqual(seg('й'.repeat(70)), ['UCS-2', 1]);
    assert.deepEqual(seg('й'.repeat(71)), ['UCS-2', 2]);
    assert.deepEqual(seg('й'.repeat(134)), ['UCS-2', 2]);
    assert.deepEqual(seg('й'.repeat(135)), ['UCS-2', 3]);
    assert.deepEqual(seg('smart ’quotes’ are not GSM'), ['UCS-2', 1]);
    assert.deepEqual(seg('\u001b'), ['UCS-2', 1], 'ESC itself is not a character of the alphabet');
  });

  it('counts an emoji as two UTF-16 units and one character', () => {
    assert.deepEqual(countSegments('😀'.repeat(35)), {
      encoding: 'UCS-2',
      segments: 1,
      characters: 35,
      units: 70,
    });
    assert.deepEqual(countSegments('😀'.repeat(36)), {
      encoding: 'UCS-2',
      segments: 2,
      characters: 36,
      units: 72,
    });
  });

  it('never splits a surrogate pair across parts', () => {
    // 134 units would fill two parts exactly, but the emoji straddles the first boundary.
    assert.deepEqual(seg(`${'й'.repeat(66)}😀${'й'.repeat(66)}`), ['UCS-2', 3]);
    assert.deepEqual(
      seg(`${'й'.repeat(65)}😀${'й'.repeat(67)}`),
      ['UCS-2', 2],
      'the emoji ends the first part exactly',
    );
  });

  it('agrees with the sandbox, which counts by encoding first and cutting the encoded stream', () => {
    const gsm = [...GSM_BASIC, ...GSM_EXTENSION];
    // Runs of one character, so that two-unit characters often straddle a part boundary.
    const run = (chars: string[]) =>
      fc.tuple(fc.constantFrom(...chars), fc.integer({ min: 1, max: 160 })).map(([c, n]) => c.repeat(n));
    const text = (chars: string[]) => fc.array(run(chars), { maxLength: 8 }).map((runs) => runs.join(''));
    const texts = fc.oneof(text(gsm), text([...gsm, 'ç', 'й', '😀', '’']));
    fc.assert(
      fc.property(texts, (text) => {
        const ours = countSegments(text);
        assert.deepEqual([ours.encoding, ours.segments], Object.values(sandboxSegments(text)));
      }),
      { numRuns: 1000 },
    );
  });
});
