import { Liquid, type Template } from 'liquidjs';

/** A problem in a template, at a JSON pointer inside the content, with Liquid's line and column. */
export interface TemplateProblem {
  path: string;
  code: string;
  message: string;
}

export type RenderResult<T> = { ok: true; content: T } | { ok: false; reason: string };

const PARSE_CACHE_LIMIT = 2_000;

function pointer(base: string, key: string | number): string {
  return `${base}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * Liquid (liquidjs, Shopify-compatible, no JavaScript evaluation) over every string in a message's
 * content. Strict: an unknown filter is a syntax error when the template is saved; an undefined
 * variable fails that message (with the variable's name, line and column) unless the template
 * gives it a `default`. Rendering is bounded in time and memory, so a hostile template cannot stall
 * the applier.
 */
export class TemplateEngine {
  readonly #liquid = new Liquid({
    strictVariables: true,
    strictFilters: true,
    lenientIf: true,
    parseLimit: 200_000,
    renderLimit: 1_000,
    memoryLimit: 16 * 1024 * 1024,
  });
  readonly #parsed = new Map<string, Template[]>();

  /** Every syntax problem in the content's strings, with the path of the field. */
  check(content: unknown, basePath = ''): TemplateProblem[] {
    const problems: TemplateProblem[] = [];
    walk(content, basePath, (text, path) => {
      try {
        this.#parse(text);
      } catch (error) {
        problems.push({ path, code: 'TEMPLATE_SYNTAX', message: (error as Error).message });
      }
    });
    return problems;
  }

  /** Renders every string of `content` with `variables`; the first failure is the message's reason. */
  async render<T>(content: T, variables: Record<string, unknown>): Promise<RenderResult<T>> {
    try {
      return { ok: true, content: (await this.#renderValue(content, variables, '')) as T };
    } catch (error) {
      const e = error as Error & { field?: string };
      return { ok: false, reason: `template ${e.field ? `${e.field}: ` : ''}${e.message}` };
    }
  }

  async #renderValue(value: unknown, variables: Record<string, unknown>, path: string): Promise<unknown> {
    if (typeof value === 'string') {
      if (!value.includes('{')) return value; // no markup: nothing to render
      try {
        return await this.#liquid.render(this.#parse(value), variables);
      } catch (error) {
        throw Object.assign(error as Error, { field: path || '/' });
      }
    }
    if (Array.isArray(value)) return Promise.all(value.map((v, i) => this.#renderValue(v, variables, pointer(path, i))));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = await this.#renderValue(v, variables, pointer(path, k));
      return out;
    }
    return value;
  }

  #parse(text: string): Template[] {
    let parsed = this.#parsed.get(text);
    if (!parsed) {
      parsed = this.#liquid.parse(text);
      if (this.#parsed.size >= PARSE_CACHE_LIMIT) this.#parsed.clear();
      this.#parsed.set(text, parsed);
    }
    return parsed;
  }
}

function walk(value: unknown, path: string, visit: (text: string, path: string) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => walk(v, pointer(path, i), visit));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, pointer(path, k), visit);
}

/**
 * Picks a language variant: the profile's tag exactly ("fr-CA"), then its language ("fr"), then
 * "default" (issue 3, part 6).
 */
export function pickVariant<T>(variants: Readonly<Record<string, T>>, language: string | null): { language: string; content: T } | undefined {
  const candidates: string[] = [];
  if (language) {
    candidates.push(language);
    const primary = language.split('-')[0];
    if (primary && primary !== language) candidates.push(primary);
  }
  candidates.push('default');
  for (const tag of candidates) {
    const content = variants[tag];
    if (content !== undefined) return { language: tag, content };
  }
  return undefined;
}
