/**
 * Request bodies for the ingest benchmark: realistic `POST /v1/profiles/update` items, one event
 * each, whose custom_ids are spread over many profiles (a multiplicative walk over PROFILES ids,
 * so consecutive requests touch unrelated profiles and every profile recurs).
 */
export const PROFILES = 100_000;
const EVENT_NAMES = ['purchase', 'page_view', 'add_to_cart', 'session_start', 'search'];
const STRIDE = 7_919; // prime, coprime with PROFILES: n → n·STRIDE mod PROFILES visits every profile

export function customIdFor(n: number): string {
  return `u${(n * STRIDE) % PROFILES}`;
}

/** One item carrying one event, as JSON text. */
export function itemJson(n: number): string {
  const name = EVENT_NAMES[n % EVENT_NAMES.length]!;
  return (
    `{"identifiers":{"custom_id":"${customIdFor(n)}"},"events":[{"name":"${name}",` +
    `"attributes":{"sku":"A${n % 500}","price":${(n % 9_000) / 100 + 1},"currency":"EUR"}}]}`
  );
}

/** A request body with `items` consecutive items starting at item number `first`. */
export function bodyJson(first: number, items: number): string {
  const parts: string[] = new Array<string>(items);
  for (let i = 0; i < items; i++) parts[i] = itemJson(first + i);
  return `[${parts.join(',')}]`;
}

/**
 * A request generator for autocannon: every request gets the next `items` item numbers, so every
 * event is distinct. `offset` keeps different phases on different item numbers.
 */
export function bodySequence(items: number, offset: number): () => string {
  let next = offset;
  return () => {
    const body = bodyJson(next, items);
    next += items;
    return body;
  };
}
