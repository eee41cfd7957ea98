import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { NativeField } from './profile-model.ts';

/** A check that normalises a native attribute value, or says in a sentence why it cannot. */
type NativeCheck = (value: string) => { ok: true; value: string } | { ok: false; code: string; message: string };

export interface NativeAttribute {
  readonly name: string;
  readonly field: NativeField;
  readonly check: NativeCheck;
}

const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

const consent: NativeCheck = (value) =>
  value === 'subscribed' || value === 'unsubscribed'
    ? { ok: true, value }
    : { ok: false, code: 'INVALID_CONSENT', message: 'must be "subscribed" or "unsubscribed"' };

const timeZones = new Map<string, string | null>();
/** The canonical spelling of an IANA time zone ("europe/paris" → "Europe/Paris"), or null. */
function canonicalTimeZone(value: string): string | null {
  let known = timeZones.get(value);
  if (known === undefined) {
    try {
      known = value.length > 0 ? new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone : null;
    } catch {
      known = null;
    }
    if (timeZones.size < 10_000) timeZones.set(value, known);
  }
  return known;
}

/** ISO 3166-1 user-assigned codes: not countries, whatever a display-name table says. */
const USER_ASSIGNED_REGION = /^(AA|Q[M-Z]|X[A-JL-Z]|ZZ)$/;

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });

/** The native `$` attributes: the only `$` names a profile accepts. */
export const NATIVE_ATTRIBUTES: readonly NativeAttribute[] = [
  {
    name: '$email_address',
    field: 'email',
    check: (raw) => {
      const value = raw.trim();
      return value.length <= 254 && EMAIL.test(value)
        ? { ok: true, value }
        : { ok: false, code: 'INVALID_EMAIL', message: 'must be an email address like ada@example.com' };
    },
  },
  { name: '$email_marketing', field: 'emailMarketing', check: consent },
  {
    name: '$phone_number',
    field: 'phone',
    check: (value) => {
      const phone = parsePhoneNumberFromString(value);
      return phone?.isValid()
        ? { ok: true, value: phone.number }
        : {
            ok: false,
            code: 'INVALID_PHONE_NUMBER',
            message: 'must be a valid phone number in international (E.164) form, like +14155550123',
          };
    },
  },
  { name: '$sms_marketing', field: 'smsMarketing', check: consent },
  {
    name: '$language',
    field: 'language',
    check: (value) => {
      try {
        const [canonical] = Intl.getCanonicalLocales(value);
        if (canonical && /^[a-z]{2,3}(-|$)/.test(canonical)) return { ok: true, value: canonical };
      } catch {
        // fall through to the error below
      }
      return { ok: false, code: 'INVALID_LANGUAGE', message: 'must be a language tag like "fr" or "pt-BR"' };
    },
  },
  {
    name: '$region',
    field: 'region',
    check: (value) => {
      const upper = value.toUpperCase();
      return /^[A-Z]{2}$/.test(upper) && !USER_ASSIGNED_REGION.test(upper) && regionNames.of(upper) !== undefined
        ? { ok: true, value: upper }
        : { ok: false, code: 'INVALID_REGION', message: 'must be an ISO 3166-1 alpha-2 country code like "FR"' };
    },
  },
  {
    name: '$timezone',
    field: 'timezone',
    check: (value) => {
      const zone = canonicalTimeZone(value);
      return zone
        ? { ok: true, value: zone }
        : { ok: false, code: 'INVALID_TIMEZONE', message: 'must be an IANA time zone like "Europe/Paris"' };
    },
  },
];

export const NATIVE_BY_NAME: ReadonlyMap<string, NativeAttribute> = new Map(NATIVE_ATTRIBUTES.map((n) => [n.name, n]));
export const NATIVE_BY_FIELD: ReadonlyMap<NativeField, NativeAttribute> = new Map(
  NATIVE_ATTRIBUTES.map((n) => [n.field, n]),
);
