import { randomBase62, sha256Hex } from '../core/ids.ts';

export type KeyKind = 'secret' | 'public';

const PREFIX: Record<KeyKind, string> = { secret: 'sk_', public: 'pk_' };
const KEY_PATTERN = /^(sk|pk)_[0-9A-Za-z]{40}$/;

/** A new API key: `sk_` (server side, full access) or `pk_` (client side) and 40 base62 characters (238 bits). */
export function generateApiKey(kind: KeyKind): string {
  return PREFIX[kind] + randomBase62(40);
}

/** Keys are stored only as this hash. */
export function hashApiKey(key: string): string {
  return sha256Hex(key);
}

/** The first characters of a key, safe to show in lists so people can tell keys apart. */
export function displayPrefix(key: string): string {
  return key.slice(0, 10);
}

export function looksLikeApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}
