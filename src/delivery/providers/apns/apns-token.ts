import { importPKCS8, SignJWT, type CryptoKey } from 'jose';
import type { Clock } from '../../../core/clock.ts';

/**
 * APNs rejects provider tokens older than one hour (ExpiredProviderToken) and answers 429
 * TooManyProviderTokenUpdates to a provider that re-signs more often than every 20 minutes, so one
 * token is shared by every request and replaced after 50 minutes.
 */
export const TOKEN_REFRESH_MS = 50 * 60 * 1000;

interface SignedToken {
  jwt: string;
  issuedAtMs: number;
  /** Signed because APNs rejected the previous one; cleared once APNs accepts it. */
  afterRejection: boolean;
}

/** What to make of APNs rejecting a token (403 ExpiredProviderToken / InvalidProviderToken). */
export type RejectionVerdict =
  /** The rejected token was current: it is dropped and the next request signs a new one. */
  | 'resign'
  /** Another request already replaced it: just retry. */
  | 'already-replaced'
  /** A token signed right after a rejection was rejected too: the key, key id or team id is wrong. */
  | 'hopeless';

/** Signs the ES256 provider token (header `alg`, `kid`; claims `iss`, `iat`) and caches it. */
export class ApnsTokenSigner {
  #key: Promise<CryptoKey> | undefined;
  #current: SignedToken | undefined;
  #signing: Promise<SignedToken> | undefined;
  #nextAfterRejection = false;

  constructor(
    private readonly options: { teamId: string; keyId: string; privateKeyPem: string },
    private readonly clock: Clock,
  ) {}

  /** The token to send now: the cached one while it is younger than 50 minutes. */
  async token(): Promise<string> {
    const current = this.#current;
    const age = current ? this.clock.now() - current.issuedAtMs : Infinity;
    if (current && age < TOKEN_REFRESH_MS) return current.jwt;
    // One signature for every request waiting at this moment, not one each.
    this.#signing ??= this.#sign().finally(() => {
      this.#signing = undefined;
    });
    return (await this.#signing).jwt;
  }

  /** APNs accepted a request carrying `jwt`. */
  accepted(jwt: string): void {
    if (this.#current?.jwt === jwt) this.#current.afterRejection = false;
  }

  /** APNs rejected `jwt` as expired or invalid. */
  rejected(jwt: string): RejectionVerdict {
    const current = this.#current;
    if (!current || current.jwt !== jwt) return 'already-replaced';
    if (current.afterRejection) return 'hopeless';
    this.#current = undefined;
    this.#nextAfterRejection = true;
    return 'resign';
  }

  async #sign(): Promise<SignedToken> {
    this.#key ??= importPKCS8(this.options.privateKeyPem, 'ES256');
    const key = await this.#key;
    const issuedAtMs = this.clock.now();
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: this.options.keyId })
      .setIssuer(this.options.teamId)
      .setIssuedAt(Math.floor(issuedAtMs / 1000))
      .sign(key);
    const signed = { jwt, issuedAtMs, afterRejection: this.#nextAfterRejection };
    this.#nextAfterRejection = false;
    this.#current = signed;
    return signed;
  }
}
