import { createECDH } from 'node:crypto';
import { Type, type Static } from 'typebox';
import type { CredentialProblem } from '../../provider.ts';

export const WebPushCredentials = Type.Object(
  {
    vapid_public_key: Type.String({
      minLength: 1,
      maxLength: 200,
      description:
        'VAPID application server public key: base64url of the uncompressed P-256 point (65 bytes), the applicationServerKey browsers subscribe with.',
    }),
    vapid_private_key: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'VAPID private key: base64url of the 32-byte P-256 scalar matching vapid_public_key.',
    }),
    subject: Type.String({
      minLength: 1,
      maxLength: 512,
      description:
        'How the push service can reach you (RFC 8292 §2.1): a "mailto:" address or an "https:" URL.',
    }),
  },
  { additionalProperties: false },
);
export type WebPushCredentials = Static<typeof WebPushCredentials>;

/** Base64 in either alphabet, with or without padding; keys are stored as unpadded base64url. */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function decodeKey(value: string): Buffer | null {
  return BASE64.test(value) ? Buffer.from(value, 'base64url') : null;
}

function checkSubject(subject: string): string | null {
  if (/\s/.test(subject)) return 'must not contain spaces (push services such as Apple reject "mailto: x")';
  if (subject.startsWith('mailto:')) {
    return /^[^@/]+@[^@/]+$/.test(subject.slice('mailto:'.length))
      ? null
      : 'must be "mailto:" followed by an email address';
  }
  if (subject.startsWith('https://')) {
    try {
      return new URL(subject).hostname ? null : 'must be an https: URL with a host';
    } catch {
      return 'must be a valid https: URL';
    }
  }
  return 'must be a "mailto:" address or an "https:" URL (RFC 8292 §2.1)';
}

/**
 * Checks what the schema cannot: both keys decode to a P-256 pair (public: 65-byte uncompressed
 * point; private: a 32-byte scalar whose public point is exactly the public key) and the subject
 * is a contact URI. Key values never appear in a problem message.
 */
export function validateWebPushCredentials(
  raw: unknown,
): { ok: true; credentials: WebPushCredentials } | { ok: false; problems: CredentialProblem[] } {
  const c = raw as WebPushCredentials;
  const problems: CredentialProblem[] = [];
  const publicKey = decodeKey(c.vapid_public_key);
  const privateKey = decodeKey(c.vapid_private_key);
  const publicOk = publicKey !== null && publicKey.length === 65 && publicKey[0] === 0x04;
  if (!publicOk) {
    problems.push({
      path: '/vapid_public_key',
      code: 'INVALID_KEY',
      message: 'must be base64url of an uncompressed P-256 public key (65 bytes starting with 0x04)',
    });
  }
  let derived: Buffer | null = null;
  if (privateKey === null || privateKey.length !== 32) {
    problems.push({
      path: '/vapid_private_key',
      code: 'INVALID_KEY',
      message: 'must be base64url of a 32-byte P-256 private key',
    });
  } else {
    try {
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(privateKey); // throws for 0 or a scalar not below the curve order
      derived = ecdh.getPublicKey();
    } catch {
      problems.push({
        path: '/vapid_private_key',
        code: 'INVALID_KEY',
        message: 'is not a valid P-256 private key',
      });
    }
  }
  if (publicOk && derived && !derived.equals(publicKey)) {
    problems.push({
      path: '/vapid_public_key',
      code: 'KEY_MISMATCH',
      message: 'is not the public key of vapid_private_key',
    });
  }
  const subjectProblem = checkSubject(c.subject);
  if (subjectProblem) problems.push({ path: '/subject', code: 'INVALID_SUBJECT', message: subjectProblem });
  if (problems.length > 0 || !publicKey || !privateKey) return { ok: false, problems };
  return {
    ok: true,
    credentials: {
      vapid_public_key: publicKey.toString('base64url'),
      vapid_private_key: privateKey.toString('base64url'),
      subject: c.subject,
    },
  };
}
