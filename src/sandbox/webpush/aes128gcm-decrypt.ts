import { createDecipheriv, createECDH, hkdfSync } from 'node:crypto';

/**
 * The receiving side of Web Push message encryption, written from RFC 8291 and RFC 8188 with
 * node:crypto alone (independently of the web-push library that encrypts), so a mistake in what
 * Herald sends fails here the way it would fail in a browser.
 */

/** What a browser keeps for one subscription. */
export interface ReceiverKeys {
  /** The user agent's P-256 private scalar (32 bytes). */
  privateKey: Buffer;
  /** Its uncompressed public point (65 bytes): the subscription's `p256dh`. */
  publicKey: Buffer;
  /** The 16-byte authentication secret: the subscription's `auth`. */
  authSecret: Buffer;
}

export class DecryptError extends Error {
  override name = 'DecryptError';
}

const SALT_BYTES = 16;
/** RFC 8188 §2.1: salt (16), rs (uint32), idlen (uint8), then keyid. */
const FIXED_HEADER_BYTES = SALT_BYTES + 4 + 1;
const TAG_BYTES = 16;
/** RFC 8291 §4: the keyid is the application server's uncompressed P-256 point. */
const SERVER_KEY_BYTES = 65;

function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

/** Decrypts an `aes128gcm` push message body and returns the plaintext; throws DecryptError. */
export function decryptAes128gcm(body: Buffer, keys: ReceiverKeys): Buffer {
  if (body.length < FIXED_HEADER_BYTES)
    throw new DecryptError('the body is shorter than the aes128gcm header');
  const salt = body.subarray(0, SALT_BYTES);
  const rs = body.readUInt32BE(SALT_BYTES);
  const idlen = body[SALT_BYTES + 4];
  // RFC 8188 §2.1: a record must hold at least the tag and one octet of padding delimiter.
  if (rs < TAG_BYTES + 2) throw new DecryptError(`rs is ${rs}; RFC 8188 requires at least 18`);
  if (idlen !== SERVER_KEY_BYTES) {
    throw new DecryptError(
      `keyid is ${idlen} bytes; RFC 8291 §4 requires the 65-byte application server public key`,
    );
  }
  const recordStart = FIXED_HEADER_BYTES + SERVER_KEY_BYTES;
  const serverKey = body.subarray(FIXED_HEADER_BYTES, recordStart);
  const record = body.subarray(recordStart);
  if (serverKey.length !== SERVER_KEY_BYTES || serverKey[0] !== 0x04)
    throw new DecryptError('keyid is not an uncompressed P-256 point');
  if (record.length < TAG_BYTES + 1)
    throw new DecryptError('the record is shorter than the authentication tag and delimiter');
  // RFC 8291 §4: a push message is exactly one record, so it must fit in rs.
  if (record.length > rs)
    throw new DecryptError(
      `the body holds more than one record (${record.length} bytes of records, rs ${rs}); RFC 8291 §4 allows one`,
    );

  let ecdhSecret: Buffer;
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(keys.privateKey);
    ecdhSecret = ecdh.computeSecret(serverKey); // rejects a point that is not on the curve (RFC 8291 §7)
  } catch {
    throw new DecryptError('keyid is not a point on P-256');
  }
  // RFC 8291 §3.3-3.4: mix the auth secret into the ECDH secret, bound to both public keys.
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0', 'latin1'), keys.publicKey, serverKey]);
  const ikm = hkdf(ecdhSecret, keys.authSecret, keyInfo, 32);
  // RFC 8188 §2.2-2.3: content encryption key and nonce from the salt; a single record has
  // sequence number 0, so the nonce is used as derived.
  const cek = hkdf(ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0', 'latin1'), 16);
  const nonce = hkdf(ikm, salt, Buffer.from('Content-Encoding: nonce\0', 'latin1'), 12);

  let padded: Buffer;
  try {
    const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
    padded = Buffer.concat([
      decipher.update(record.subarray(0, record.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new DecryptError(
      'authentication failed: the body was not encrypted to this subscription’s p256dh and auth',
    );
  }
  // RFC 8188 §2: padding is zeros after a delimiter; RFC 8291 §4: the delimiter must be 0x02.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0) throw new DecryptError('no padding delimiter');
  const delimiter = padded[end] ?? 0;
  if (delimiter !== 0x02)
    throw new DecryptError(
      `the padding delimiter is 0x${delimiter.toString(16).padStart(2, '0')}; RFC 8291 §4 requires 0x02`,
    );
  return padded.subarray(0, end);
}
