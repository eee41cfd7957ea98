/**
 * SMS segment counting per GSM 03.38 / 3GPP TS 23.038 and the concatenation rules of TS 23.040.
 *
 * A single SMS carries 140 octets of user data. In the GSM 7-bit default alphabet that is 160
 * septets; in UCS-2 it is 70 UTF-16 code units. A concatenated message spends 6 octets per part on
 * the user data header, leaving 153 septets or 67 code units per part. Characters of the GSM
 * extension table are sent as ESC + character, two septets; one character outside the GSM alphabet
 * makes the whole message UCS-2. Neither an ESC pair nor a surrogate pair may be split across parts,
 * so a part can end a unit short of its capacity.
 */

/** The GSM 7-bit default alphabet in code order; position 0x1B (ESC) is not a character. */
const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

/** Characters of the default extension table, each sent as ESC + code (two septets). */
const GSM_EXTENSION = '\f^{}\\[~]|€';

const BASIC = new Set([...GSM_BASIC].filter((c) => c !== '\u001b'));
const EXTENSION = new Set(GSM_EXTENSION);

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SegmentCount {
  encoding: SmsEncoding;
  /** Parts the message is sent as (billed as); at least 1. */
  segments: number;
  /** Unicode code points in the text. */
  characters: number;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2) the text takes, before splitting. */
  units: number;
}

const CAPACITY: Record<SmsEncoding, { single: number; part: number }> = {
  'GSM-7': { single: 160, part: 153 },
  'UCS-2': { single: 70, part: 67 },
};

/** Septets per character in GSM-7, or null when the text needs UCS-2. */
function gsmCosts(chars: readonly string[]): number[] | null {
  const costs: number[] = [];
  for (const c of chars) {
    if (BASIC.has(c)) costs.push(1);
    else if (EXTENSION.has(c)) costs.push(2);
    else return null;
  }
  return costs;
}

/** Fills parts greedily; a character that does not fit whole starts the next part. */
function countParts(costs: readonly number[], capacity: number): number {
  let parts = 1;
  let used = 0;
  for (const cost of costs) {
    if (used + cost > capacity) {
      parts++;
      used = 0;
    }
    used += cost;
  }
  return parts;
}

/** The encoding and number of segments an SMS with this text is sent as. */
export function countSegments(text: string): SegmentCount {
  const chars = [...text]; // code points: a surrogate pair stays one element
  const gsm = gsmCosts(chars);
  const encoding: SmsEncoding = gsm ? 'GSM-7' : 'UCS-2';
  const costs = gsm ?? chars.map((c) => c.length); // UTF-16 code units: 2 for a surrogate pair
  const units = costs.reduce((sum, cost) => sum + cost, 0);
  const { single, part } = CAPACITY[encoding];
  const segments = units <= single ? 1 : countParts(costs, part);
  return { encoding, segments, characters: chars.length, units };
}
