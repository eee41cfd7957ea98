import { Compile } from 'typebox/compile';
import type { TSchema } from 'typebox';
import type { Problem } from '../profiles/attribute-validation.ts';

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/** A compiled shape check that reports problems as Herald's `{path, code, message}`. */
export interface ShapeCheck {
  check(value: unknown, basePath: string, problems: Problem[]): boolean;
}

function describeTypes(types: unknown[]): string {
  const names = types.map((t) => (t === 'integer' ? 'an integer' : t === 'null' ? 'null' : `a ${String(t)}`));
  return `must be ${names.join(' or ')}`;
}

function problemFor(error: SchemaError, basePath: string): Problem | undefined {
  const path = basePath + error.instancePath;
  const p = error.params;
  switch (error.keyword) {
    case 'boolean':
      return { path, code: 'UNKNOWN_FIELD', message: 'is not a known field' };
    case 'additionalProperties':
      return undefined; // reported per field by the 'boolean' errors
    case 'type':
      return { path, code: 'INVALID_TYPE', message: describeTypes([p.type]) };
    case 'minLength':
      return {
        path,
        code: 'INVALID_LENGTH',
        message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters`,
      };
    case 'maxLength':
      return { path, code: 'INVALID_LENGTH', message: `must be at most ${String(p.limit)} characters` };
    case 'maxItems':
      return { path, code: 'TOO_MANY_ITEMS', message: `must have at most ${String(p.limit)} items` };
    case 'minItems':
      return { path, code: 'TOO_FEW_ITEMS', message: `must have at least ${String(p.limit)} items` };
    default:
      return { path, code: 'INVALID_VALUE', message: error.message };
  }
}

/** Folds the errors of each alternative of a union into one sentence at that path. */
function unionProblem(errors: SchemaError[], basePath: string): Problem {
  const path = basePath + (errors[0]?.instancePath ?? '');
  const allowed = errors.filter((e) => e.keyword === 'const').map((e) => JSON.stringify(e.params.allowedValue));
  if (allowed.length > 0) return { path, code: 'INVALID_VALUE', message: `must be one of ${allowed.join(', ')}` };
  const types = errors.filter((e) => e.keyword === 'type').map((e) => e.params.type);
  if (types.length > 0) return { path, code: 'INVALID_TYPE', message: describeTypes(types) };
  return { path, code: 'INVALID_VALUE', message: 'does not match any allowed form' };
}

export function compileShape(schema: TSchema): ShapeCheck {
  const compiled = Compile(schema);
  return {
    check(value, basePath, problems) {
      if (compiled.Check(value)) return true;
      const errors = [...compiled.Errors(value)] as unknown as SchemaError[];
      const isBranchMismatch = (e: SchemaError): boolean =>
        e.keyword === 'anyOf' || e.keyword === 'type' || e.keyword === 'const';
      const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
      const folded = new Set<string>();
      for (const unionPath of unionPaths) {
        const inside = errors.filter(
          (e) => (e.instancePath === unionPath && !isBranchMismatch(e)) || e.instancePath.startsWith(`${unionPath}/`),
        );
        // A value of the right kind that fails inside one alternative reports those inner problems;
        // a value of no allowed kind gets one sentence naming the allowed kinds.
        if (inside.length > 0) continue;
        folded.add(unionPath);
        problems.push(unionProblem(errors.filter((e) => e.instancePath === unionPath && e.keyword !== 'anyOf'), basePath));
      }
      for (const error of errors) {
        if (error.keyword === 'anyOf' || folded.has(error.instancePath)) continue;
        if (unionPaths.has(error.instancePath) && isBranchMismatch(error)) continue;
        if (error.keyword === 'required') {
          for (const name of (error.params.requiredProperties as string[] | undefined) ?? []) {
            problems.push({ path: `${basePath}${error.instancePath}/${name}`, code: 'REQUIRED', message: 'is required' });
          }
          continue;
        }
        const problem = problemFor(error, basePath);
        if (problem) problems.push(problem);
      }
      return false;
    },
  };
}
