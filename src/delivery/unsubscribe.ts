import { createHmac, timingSafeEqual } from 'node:crypto';

/** Who a one-click unsubscribe link (RFC 8058) unsubscribes: a profile, or else a bare address. */
export interface UnsubscribeTarget {
  projectId: string;
  customId: string | null;
  address: string;
}

/** A link token: the target, and an HMAC so nobody can unsubscribe someone else. */
export function unsubscribeToken(key: Buffer, target: UnsubscribeTarget): string {
  const body = Buffer.from(JSON.stringify([target.projectId, target.customId, target.address])).toString('base64url');
  const mac = createHmac('sha256', key).update(body).digest('base64url').slice(0, 32);
  return `${body}.${mac}`;
}

export function readUnsubscribeToken(key: Buffer, token: string): UnsubscribeTarget | null {
  const [body, mac] = token.split('.');
  if (!body || !mac) return null;
  const expected = createHmac('sha256', key).update(body).digest('base64url').slice(0, 32);
  if (mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) return null;
  try {
    const [projectId, customId, address] = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as [string, string | null, string];
    return typeof projectId === 'string' && typeof address === 'string' ? { projectId, customId, address } : null;
  } catch {
    return null;
  }
}

/** The key that signs unsubscribe links, derived from the master key. */
export function unsubscribeKey(masterKey: Buffer): Buffer {
  return createHmac('sha256', masterKey).update('herald/unsubscribe-links/v1').digest();
}
