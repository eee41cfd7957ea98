import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `X-Twilio-Signature` of a request Twilio makes to us (a status callback): base64 HMAC-SHA1,
 * keyed with the account's auth token, over the full URL followed by every POST parameter's name
 * and value, sorted by name, with no separators. Herald's status-callback route checks it so that
 * only the provider can report a message's fate.
 */
export function twilioSignature(authToken: string, url: string, params: Iterable<[string, string]>): string {
  const sorted = [...params].sort(([a, av], [b, bv]) => (a === b ? compare(av, bv) : compare(a, b)));
  const data = url + sorted.map(([name, value]) => name + value).join('');
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when `signature` is the Twilio signature of this URL and form, in constant time. */
export function verifyTwilioSignature(
  authToken: string,
  url: string,
  params: Iterable<[string, string]>,
  signature: string,
): boolean {
  const expected = Buffer.from(twilioSignature(authToken, url, params));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
