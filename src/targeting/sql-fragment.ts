import type { SqlValue } from '../storage/sql.ts';

/** A piece of SQL with its `?` parameters in the order they appear in the text. */
export class Fragment {
  constructor(
    readonly text: string,
    readonly params: readonly SqlValue[],
  ) {}
}

/** Raw SQL text (never user input). */
export const raw = (text: string): Fragment => new Fragment(text, []);

/**
 * Builds a fragment: interpolated fragments are inlined, every other value becomes a `?`
 * parameter, so parameters can never drift out of order with the text.
 */
export function sql(strings: TemplateStringsArray, ...values: (Fragment | SqlValue)[]): Fragment {
  let text = strings[0] ?? '';
  const params: SqlValue[] = [];
  values.forEach((value, i) => {
    if (value instanceof Fragment) {
      text += value.text;
      params.push(...value.params);
    } else {
      text += '?';
      params.push(value);
    }
    text += strings[i + 1] ?? '';
  });
  return new Fragment(text, params);
}

export function join(fragments: readonly Fragment[], separator: string): Fragment {
  return new Fragment(
    fragments.map((f) => f.text).join(separator),
    fragments.flatMap((f) => f.params),
  );
}

/** `(?, ?, …)` for a non-empty list of values. */
export const list = (values: readonly SqlValue[]): Fragment => new Fragment(`(${values.map(() => '?').join(', ')})`, values);
