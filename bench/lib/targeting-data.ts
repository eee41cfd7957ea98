/**
 * The deterministic population behind `npm run bench:targeting`: what each profile, installation
 * and event looks like. Pure functions of a seed, so every run seeds the same database; bump
 * GENERATOR_VERSION whenever anything here changes what is generated (the cached file is keyed by it).
 */

export const GENERATOR_VERSION = 1;
export const PROJECT_ID = 'prj_01kbench0000targeting0000';
/** The fixed "now" of the seeded history and of every evaluation. */
export const NOW_MS = Date.parse('2026-11-20T12:00:00Z');
export const DAY_MS = 86_400_000;
export const HISTORY_DAYS = 180;

/** mulberry32: a small, fast, seedable 32-bit PRNG; `next()` is uniform in [0, 1). */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  hex(length: number): string {
    let out = '';
    while (out.length < length) out += ((this.next() * 4294967296) >>> 0).toString(16).padStart(8, '0');
    return out.slice(0, length);
  }
}

/** Draws from a fixed weighted list in O(log n). */
export class Weighted<T> {
  readonly #cumulative: number[] = [];
  readonly #items: T[] = [];
  constructor(entries: readonly (readonly [T, number])[]) {
    let total = 0;
    for (const [item, weight] of entries) {
      total += weight;
      this.#items.push(item);
      this.#cumulative.push(total);
    }
    for (let i = 0; i < this.#cumulative.length; i++) this.#cumulative[i]! /= total;
  }

  draw(rng: Prng): T {
    const u = rng.next();
    let lo = 0;
    let hi = this.#cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return this.#items[lo]!;
  }
}

/** Event names with a skewed distribution (share of all events). Index = the generator's event code. */
export const EVENT_NAMES = [
  ['screen_viewed', 22],
  ['app_opened', 14],
  ['product_viewed', 14],
  ['search', 8],
  ['added_to_cart', 6],
  ['notification_received', 6],
  ['page_viewed', 5],
  ['login', 4],
  ['notification_opened', 3],
  ['added_to_wishlist', 3],
  ['video_played', 3],
  ['checkout_started', 2.5],
  ['purchase', 1.5],
  ['logout', 1.5],
  ['shared', 1],
  ['coupon_applied', 1],
  ['settings_changed', 0.7],
  ['review_submitted', 0.5],
  ['subscription_renewed', 0.3],
  ['support_ticket_opened', 0.3],
] as const satisfies readonly (readonly [string, number])[];
export const EVENT_CODE = new Weighted(EVENT_NAMES.map(([, w], i) => [i, w] as const));

const LANGUAGES = new Weighted<[string | null, string, string]>([
  [['en', 'US', 'America/New_York'], 25],
  [['en', 'GB', 'Europe/London'], 12],
  [['en', 'US', 'America/Los_Angeles'], 8],
  [['fr', 'FR', 'Europe/Paris'], 13],
  [['fr', 'CA', 'America/Toronto'], 2],
  [['de', 'DE', 'Europe/Berlin'], 10],
  [['es', 'ES', 'Europe/Madrid'], 7],
  [['es', 'MX', 'America/Mexico_City'], 3],
  [['pt', 'BR', 'America/Sao_Paulo'], 5],
  [['it', 'IT', 'Europe/Rome'], 5],
  [['ja', 'JP', 'Asia/Tokyo'], 3],
  [['nl', 'NL', 'Europe/Amsterdam'], 2],
  [[null, 'US', 'America/Chicago'], 5],
]);
const PLANS = new Weighted([
  ['free', 60],
  ['pro', 22],
  ['team', 12],
  ['enterprise', 6],
] as const);
const INTERESTS = [
  'sports',
  'music',
  'travel',
  'cooking',
  'tech',
  'fashion',
  'gaming',
  'books',
  'fitness',
  'movies',
];
const CITIES = [
  'Paris',
  'Lyon',
  'Berlin',
  'Madrid',
  'London',
  'New York',
  'Austin',
  'Tokyo',
  'Rome',
  'São Paulo',
];
const FIRST_NAMES = [
  'Alice',
  'Bruno',
  'Chloé',
  'David',
  'Emma',
  'Felix',
  'Giulia',
  'Hugo',
  'Inès',
  'Jonas',
  'Kenji',
  'Lucía',
];
export const CATEGORIES = new Weighted([
  ['shoes', 20],
  ['shirts', 18],
  ['bags', 10],
  ['accessories', 15],
  ['electronics', 12],
  ['home', 10],
  ['beauty', 8],
  ['sports', 7],
] as const);
const SCREENS = ['home', 'search', 'product', 'cart', 'profile', 'settings', 'orders'];
const QUERIES = ['red shoes', 'summer dress', 'headphones', 'backpack', 'running', 'gift', 'sale'];
const PLATFORMS = new Weighted([
  ['ios', 45],
  ['android', 40],
  ['web', 15],
] as const);

export const customIdOf = (id: number): string => `user_${id.toString(36).padStart(5, '0')}`;
export const emailOf = (id: number): string => `${customIdOf(id)}@example.com`;

/** YYYY-MM-DD / YYYY-MM-DDThh:mm:ssZ, the two date forms Herald's attribute typing recognises. */
export const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
export const isoDateTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;

export interface ProfileRow {
  customId: string;
  email: string | null;
  emailMarketing: string | null;
  phone: string | null;
  smsMarketing: string | null;
  language: string | null;
  region: string;
  timezone: string;
  attributes: Record<string, string | number | boolean | string[]>;
  createdAt: number;
}

/** Profile `id` (1-based; the store assigns ids in insertion order) from the profile stream. */
export function profileRow(id: number, rng: Prng): ProfileRow {
  const [language, region, timezone] = LANGUAGES.draw(rng);
  const hasEmail = rng.chance(0.85);
  const hasPhone = rng.chance(0.4);
  const signup = NOW_MS - Math.floor(rng.next() * 3 * 365 * DAY_MS);
  const attributes: ProfileRow['attributes'] = {
    first_name: rng.pick(FIRST_NAMES),
    plan: PLANS.draw(rng),
    signup_date: isoDateTime(signup),
  };
  if (rng.chance(0.8)) attributes.lifetime_value = Math.round(rng.next() ** 2 * 200_000) / 100;
  attributes.orders_count = Math.floor(rng.next() ** 3 * 40);
  if (rng.chance(0.7))
    attributes.birthday = isoDate(Date.UTC(1950 + rng.int(56), rng.int(12), 1 + rng.int(28)));
  attributes.newsletter_opt_in = rng.chance(0.45);
  if (rng.chance(0.1)) attributes.beta = true;
  if (rng.chance(0.6)) attributes.interests = INTERESTS.filter(() => rng.chance(0.22));
  if (rng.chance(0.5)) attributes.city = rng.pick(CITIES);
  if (rng.chance(0.3))
    attributes.trial_ends_at = isoDateTime(NOW_MS + Math.floor((rng.next() - 0.5) * 60 * DAY_MS));
  return {
    customId: customIdOf(id),
    email: hasEmail ? emailOf(id) : null,
    emailMarketing: hasEmail
      ? rng.chance(0.7)
        ? 'subscribed'
        : rng.chance(0.8)
          ? 'unsubscribed'
          : null
      : null,
    phone: hasPhone ? `+336${String(10_000_000 + id).padStart(8, '0')}` : null,
    smsMarketing: hasPhone
      ? rng.chance(0.5)
        ? 'subscribed'
        : rng.chance(0.6)
          ? 'unsubscribed'
          : null
      : null,
    language,
    region,
    timezone,
    attributes,
    createdAt: signup,
  };
}

export interface InstallationRow {
  installId: string;
  platform: 'ios' | 'android' | 'web';
  pushToken: string | null;
  webPush: string | null;
  pushEnabled: 0 | 1;
  pushDisabledReason: string | null;
  appVersion: string | null;
}

/** 0 (25 %), 1 (55 %) or 2 (20 %) installations; 80 % allow push, 2 % have a refused token. */
export function installationRows(id: number, rng: Prng): InstallationRow[] {
  const u = rng.next();
  const n = u < 0.25 ? 0 : u < 0.8 ? 1 : 2;
  const out: InstallationRow[] = [];
  for (let k = 0; k < n; k++) {
    const platform = PLATFORMS.draw(rng);
    const installId = `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`;
    const web = platform === 'web';
    out.push({
      installId,
      platform,
      pushToken: web ? null : platform === 'ios' ? rng.hex(64) : `f${rng.hex(21)}:APA91b${rng.hex(134)}`,
      webPush: web
        ? JSON.stringify({
            endpoint: `https://fcm.googleapis.com/fcm/send/${rng.hex(40)}`,
            keys: { p256dh: `B${rng.hex(86)}`, auth: rng.hex(22) },
          })
        : null,
      pushEnabled: rng.chance(0.8) ? 1 : 0,
      pushDisabledReason: rng.chance(0.02) ? (platform === 'ios' ? 'Unregistered' : 'UNREGISTERED') : null,
      appVersion: web ? null : `3.${rng.int(8)}.${rng.int(10)}`,
    });
  }
  return out;
}

const price = (rng: Prng): string => (5 + rng.int(20_000) / 100).toFixed(2);
const EVENT_ATTRIBUTES: Partial<Record<(typeof EVENT_NAMES)[number][0], (rng: Prng) => string>> = {
  product_viewed: (rng) =>
    `{"product_id":"p${rng.int(5000)}","category":"${CATEGORIES.draw(rng)}","price":${price(rng)}}`,
  added_to_cart: (rng) =>
    `{"product_id":"p${rng.int(5000)}","price":${price(rng)},"quantity":${1 + rng.int(3)}}`,
  purchase: (rng) =>
    `{"order_id":"o${rng.hex(10)}","amount":${(10 + rng.int(50_000) / 100).toFixed(2)},"currency":"EUR","items":${1 + rng.int(5)}}`,
  search: (rng) => `{"query":"${rng.pick(QUERIES)}"}`,
  screen_viewed: (rng) => `{"screen":"${rng.pick(SCREENS)}"}`,
  page_viewed: (rng) => `{"path":"/${rng.pick(SCREENS)}"}`,
};

/** The JSON attributes an event of this code carries, or null. */
export function eventAttributes(code: number, rng: Prng): string | null {
  return EVENT_ATTRIBUTES[EVENT_NAMES[code]![0]]?.(rng) ?? null;
}

/**
 * How many events each profile has, summing to exactly `total`: heavy-tailed activity (Pareto,
 * capped at 50× the mean), 8 % of profiles never send one. Systematic rounding keeps the sum exact.
 */
export function eventsPerProfile(profiles: number, total: number, rng: Prng): Uint32Array {
  const weights = new Float64Array(profiles);
  let sum = 0;
  for (let i = 0; i < profiles; i++) {
    const w = rng.chance(0.08) ? 0 : Math.min(50 * 3, (1 - rng.next()) ** (-1 / 1.5));
    weights[i] = w;
    sum += w;
  }
  const counts = new Uint32Array(profiles);
  let carry = 0;
  for (let i = 0; i < profiles; i++) {
    const exact = (weights[i]! * total) / sum + carry;
    const n = Math.floor(exact + 1e-9);
    counts[i] = n;
    carry = exact - n;
  }
  let assigned = counts.reduce((a, b) => a + b, 0);
  for (let i = profiles - 1; assigned < total; i--, assigned++) counts[i]!++; // float residue
  return counts;
}

/**
 * When a profile was last active: 55 % are active up to now, the others stopped some time in the
 * window (churn), so "did not do X lately" segments have realistic sizes.
 */
export function activeUntil(rng: Prng): number {
  return rng.chance(0.55) ? NOW_MS : NOW_MS - Math.floor(rng.next() * (HISTORY_DAYS - 1) * DAY_MS);
}
