/**
 * The stand-in's own segment count, written from GSM 03.38 / TS 23.040 independently of Herald's
 * counter (which works per character): this one encodes the text into septets or UTF-16 code units
 * first and cuts the encoded stream into parts, so a counting bug on either side shows up as a
 * disagreement in the provider tests.
 */

/** The default alphabet by septet value; 0x1B is the escape to the extension table. */
const DEFAULT_ALPHABET =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const ESC = 0x1b;
/** The extension table: character → septet value after ESC. */
const EXTENSION = new Map<string, number>([
  ['\f', 0x0a],
  ['^', 0x14],
  ['{', 0x28],
  ['}', 0x29],
  ['\\', 0x2f],
  ['[', 0x3c],
  ['~', 0x3d],
  [']', 0x3e],
  ['|', 0x40],
  ['€', 0x65],
]);

function toSeptets(text: string): number[] | null {
  const septets: number[] = [];
  for (const char of text) {
    const basic = char === '\u001b' ? -1 : DEFAULT_ALPHABET.indexOf(char);
    if (basic >= 0) {
      septets.push(basic);
      continue;
    }
    const extended = EXTENSION.get(char);
    if (extended === undefined) return null;
    septets.push(ESC, extended);
  }
  return septets;
}

/** Parts of at most `per` units, never ending on a unit that needs its successor. */
function parts(units: readonly number[], per: number, needsNext: (unit: number) => boolean): number {
  let count = 0;
  for (let start = 0; start < units.length; count++) {
    let end = Math.min(start + per, units.length);
    if (end < units.length && needsNext(units[end - 1]!)) end--;
    start = end;
  }
  return Math.max(1, count);
}

/** Encoding and segment count as a carrier would see them (140-octet user data, 6-octet UDH). */
export function sandboxSegments(text: string): { encoding: 'GSM-7' | 'UCS-2'; segments: number } {
  const septets = toSeptets(text);
  if (septets) {
    return { encoding: 'GSM-7', segments: septets.length <= 160 ? 1 : parts(septets, 153, (s) => s === ESC) };
  }
  const units = Array.from({ length: text.length }, (_, i) => text.charCodeAt(i));
  const highSurrogate = (u: number) => u >= 0xd800 && u <= 0xdbff;
  return { encoding: 'UCS-2', segments: units.length <= 70 ? 1 : parts(units, 67, highSurrogate) };
}
