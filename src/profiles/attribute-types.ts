import type { AttributeType } from './profile-model.ts';

export const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
export const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
const HTTP_URL = /^https?:\/\/[^\s]+$/;

/** The type targeting sees for a stored value: ISO dates and http(s) URLs are typed strings. */
export function inferAttributeType(value: string | number | boolean | string[]): AttributeType {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (ISO_DATE.test(value) || ISO_DATETIME.test(value)) return 'date';
  if (HTTP_URL.test(value)) return 'url';
  return 'string';
}

