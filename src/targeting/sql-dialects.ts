import { type Fragment, raw, sql } from './sql-fragment.ts';

/**
 * How each backend reads JSON members, compares text, parses dates and hashes buckets for the
 * segment compiler (segment-sql.ts). Everything else about a compiled segment is shared.
 */

/** What differs between the backends; the rest of the compiler is shared. */
export interface TargetingDialect {
  readonly name: 'sqlite' | 'postgres';
  /** The JSON type of `col`'s member `key`, tested against one of our kinds. */
  isType(col: string, key: string, kind: JsonKind): Fragment;
  /** The member as text (valid only when it is a JSON string). */
  text(col: string, key: string): Fragment;
  /** The member as a number, NULL unless it is a JSON number. */
  number(col: string, key: string): Fragment;
  /** The member equals this JSON scalar (type and value). */
  equalsScalar(col: string, key: string, value: string | number | boolean): Fragment;
  /** The member is an array holding this JSON scalar. */
  arrayHolds(col: string, key: string, value: string | number | boolean): Fragment;
  /** Text comparison in code point order. */
  compareText(left: Fragment, op: string, right: string): Fragment;
  contains(textExpr: Fragment, needle: string): Fragment;
  startsWith(textExpr: Fragment, prefix: string): Fragment;
  /** Epoch ms of a date string (see `parseInstant`), NULL when it is not one. */
  instant(textExpr: Fragment): Fragment;
  /** `MM-DD` of an epoch-ms expression, in UTC. */
  monthDay(msExpr: Fragment): Fragment;
  /** A profile's holdout bucket in [0, 100), as `bucketOf` computes it. */
  bucket(salt: string): Fragment;
  readonly trueValue: string;
}

export type JsonKind = 'present' | 'string' | 'number' | 'true' | 'false' | 'array';

const SQLITE_TYPES: Record<Exclude<JsonKind, 'present'>, string> = {
  string: "= 'text'",
  number: "IN ('integer', 'real')",
  true: "= 'true'",
  false: "= 'false'",
  array: "= 'array'",
};

const jsonPath = (key: string): string => `$."${key.replace(/"/g, '""')}"`;

export const SQLITE_DIALECT: TargetingDialect = {
  name: 'sqlite',
  isType(col, key, kind) {
    if (kind === 'present') return sql`(json_type(${raw(col)}, ${jsonPath(key)}) IS NOT NULL AND json_type(${raw(col)}, ${jsonPath(key)}) <> 'null')`;
    return sql`json_type(${raw(col)}, ${jsonPath(key)}) ${raw(SQLITE_TYPES[kind])}`;
  },
  text: (col, key) => sql`json_extract(${raw(col)}, ${jsonPath(key)})`,
  number: (col, key) => sql`(CASE WHEN json_type(${raw(col)}, ${jsonPath(key)}) IN ('integer', 'real') THEN json_extract(${raw(col)}, ${jsonPath(key)}) END)`,
  equalsScalar(col, key, value) {
    if (typeof value === 'boolean') return SQLITE_DIALECT.isType(col, key, value ? 'true' : 'false');
    const kind = typeof value === 'number' ? 'number' : 'string';
    return sql`(${SQLITE_DIALECT.isType(col, key, kind)} AND json_extract(${raw(col)}, ${jsonPath(key)}) = ${value})`;
  },
  arrayHolds(col, key, value) {
    const type = typeof value === 'boolean' ? (value ? "= 'true'" : "= 'false'") : typeof value === 'number' ? "IN ('integer', 'real')" : "= 'text'";
    const match = typeof value === 'boolean' ? raw('') : sql` AND j.value = ${value}`;
    return sql`EXISTS (SELECT 1 FROM json_each(${raw(col)}, ${jsonPath(key)}) j WHERE j.type ${raw(type)}${match})`;
  },
  compareText: (left, op, right) => sql`${left} ${raw(op)} ${right}`,
  contains: (e, needle) => sql`instr(${e}, ${needle}) > 0`,
  startsWith: (e, prefix) => sql`substr(${e}, 1, length(${prefix})) = ${prefix}`,
  instant: (e) => sql`herald_instant(${e})`,
  monthDay: (ms) => sql`strftime('%m-%d', (${ms}) / 1000.0, 'unixepoch')`,
  bucket: (salt) => sql`herald_bucket(${salt}, p.project_id, p.custom_id)`,
  trueValue: '1',
};

const PG_TYPES: Record<Exclude<JsonKind, 'present' | 'true' | 'false'>, string> = { string: 'string', number: 'number', array: 'array' };

export const POSTGRES_DIALECT: TargetingDialect = {
  name: 'postgres',
  isType(col, key, kind) {
    if (kind === 'present') return sql`jsonb_typeof(${raw(col)} -> ${key}) <> 'null'`;
    if (kind === 'true' || kind === 'false') return sql`(${raw(col)} -> ${key}) = ${raw(`'${kind}'::jsonb`)}`;
    return sql`jsonb_typeof(${raw(col)} -> ${key}) = ${raw(`'${PG_TYPES[kind]}'`)}`;
  },
  text: (col, key) => sql`(${raw(col)} ->> ${key})`,
  number: (col, key) => sql`(CASE WHEN jsonb_typeof(${raw(col)} -> ${key}) = 'number' THEN (${raw(col)} ->> ${key})::float8 END)`,
  equalsScalar: (col, key, value) => sql`(${raw(col)} -> ${key}) = ${JSON.stringify(value)}::jsonb`,
  arrayHolds: (col, key, value) => sql`(jsonb_typeof(${raw(col)} -> ${key}) = 'array' AND (${raw(col)} -> ${key}) @> ${JSON.stringify([value])}::jsonb)`,
  compareText: (left, op, right) => sql`${left} COLLATE "C" ${raw(op)} ${right}`,
  contains: (e, needle) => sql`strpos(${e}, ${needle}) > 0`,
  startsWith: (e, prefix) => sql`starts_with(${e}, ${prefix})`,
  instant: (e) => sql`herald_instant(${e})`,
  monthDay: (ms) => sql`to_char(to_timestamp((${ms}) / 1000.0) AT TIME ZONE 'UTC', 'MM-DD')`,
  bucket: (salt) =>
    sql`(('x' || substr(encode(sha256(convert_to(${salt} || ':' || p.project_id || ':' || p.custom_id, 'UTF8')), 'hex'), 1, 8))::bit(32)::bigint::float8 / 4294967296.0::float8 * 100.0::float8)`,
  trueValue: 'TRUE',
};
