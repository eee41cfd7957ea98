import { createHash } from 'node:crypto';

/**
 * A message id derived from its idempotency key: the same recipient of the same send gets the same
 * id (a UUID, as APNs wants for apns-id) whenever it is materialised — after a replay too (I4).
 * PostgreSQL computes the same function in SQL (`herald_message_id`, store migration 4) and SQLite
 * calls this one, so a campaign's fan-out can build ids inside `INSERT … SELECT`.
 */
export function messageIdFor(idempotencyKey: string): string {
  const h = createHash('sha256').update(idempotencyKey).digest('hex');
  // RFC 9562 UUIDv8 layout: version nibble 8, variant bits 10.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
