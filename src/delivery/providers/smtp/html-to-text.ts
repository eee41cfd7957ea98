/**
 * A small HTML → plain text converter for the text/plain part of an email. Mail clients that do
 * not render HTML (and spam filters, which distrust HTML-only mail) read this part, so it keeps
 * what a reader needs: paragraphs, line breaks, lists, and links as "text (url)".
 *
 * It is a single left-to-right scan with no backtracking regular expressions, so hostile or huge
 * template output costs linear time. It never evaluates anything: scripts and styles are dropped.
 */
import { decodeEntities } from './html-entities.ts';

// Elements that start and end a paragraph of text.
const BLOCK = new Set(
  'address article aside blockquote center dd div dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header main nav p section table'.split(
    ' ',
  ),
);
/** Elements whose content is never shown as text. */
const HIDDEN = new Set(['head', 'script', 'style', 'template', 'title', 'noscript', 'xml']);

interface Tag {
  name: string;
  closing: boolean;
  attributes: Map<string, string>;
  /** Index just past the closing ">". */
  end: number;
}

const isNameChar = (c: string): boolean => /[A-Za-z0-9:-]/.test(c);
const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\n' || c === '\t' || c === '\r' || c === '\f';

/**
 * Reads the tag that starts at `start`: null if the "<" starts no tag, "eof" if the tag never
 * ends (browsers drop such a tag and everything after it; so do we, which keeps the scan linear).
 */
function readTag(html: string, start: number): Tag | null | 'eof' {
  let i = start + 1;
  const closing = html[i] === '/';
  if (closing) i++;
  if (!/[A-Za-z]/.test(html[i] ?? '')) return null;
  let name = '';
  while (i < html.length && isNameChar(html[i]!)) name += html[i++]!;
  const attributes = new Map<string, string>();
  while (i < html.length && html[i] !== '>') {
    if (isSpace(html[i]) || html[i] === '/') {
      i++;
      continue;
    }
    let key = '';
    while (i < html.length && !isSpace(html[i]) && html[i] !== '=' && html[i] !== '>' && html[i] !== '/')
      key += html[i++]!;
    while (isSpace(html[i])) i++;
    let value = '';
    if (html[i] === '=') {
      i++;
      while (isSpace(html[i])) i++;
      const quote = html[i];
      if (quote === '"' || quote === "'") {
        const close = html.indexOf(quote, i + 1);
        if (close === -1) return 'eof';
        value = html.slice(i + 1, close);
        i = close + 1;
      } else {
        while (i < html.length && !isSpace(html[i]) && html[i] !== '>') value += html[i++]!;
      }
    }
    if (key) attributes.set(key.toLowerCase(), decodeEntities(value));
  }
  if (i >= html.length) return 'eof';
  return { name: name.toLowerCase(), closing, attributes, end: i + 1 };
}

/**
 * Builds the text, keeping track of line starts so block breaks and list prefixes land right.
 * Output is kept as a list of pieces and never read back as one string while it grows: reading a
 * string that is being appended to makes V8 flatten it each time, which turns the scan quadratic.
 */
class TextWriter {
  readonly #parts: string[] = [];
  #lastChar = '';
  /** How many newlines the output ends with. */
  #trailingNewlines = 0;
  /** Newlines owed before the next text: 1 for a line break, 2 for a paragraph. */
  #pendingBreak = 0;

  /** A position to read the text written after it from, with `since`. */
  mark(): number {
    return this.#parts.length;
  }

  /** The text written since `mark`, or null if it is longer than `max` characters. */
  since(mark: number, max: number): string | null {
    let text = '';
    for (let i = this.#parts.length - 1; i >= mark; i--) {
      text = this.#parts[i]! + text;
      if (text.length > max) return null;
    }
    return text;
  }

  /** Asks for `lines` line breaks before whatever comes next (not added at the very start). */
  block(lines: 1 | 2): void {
    this.#pendingBreak = Math.max(this.#pendingBreak, lines);
  }

  /** A hard line break (<br>): each one counts, so two of them make an empty line. */
  lineBreak(): void {
    this.#flushBreak();
    this.#append('\n');
  }

  /** Appends text; whitespace is collapsed unless `preformatted`. */
  text(raw: string, preformatted = false): void {
    let text = preformatted ? raw.replace(/\r\n?/g, '\n') : raw.replace(/[ \t\n\r\f]+/g, ' ');
    if (
      !preformatted &&
      (this.#pendingBreak > 0 || this.#lastChar === '' || this.#lastChar === '\n' || this.#lastChar === ' ')
    ) {
      text = text.trimStart();
    }
    if (text === '') return;
    this.#flushBreak();
    this.#append(text);
  }

  /** Text that starts a line, such as a list bullet. */
  prefix(text: string): void {
    this.#flushBreak();
    this.#append(text);
  }

  result(): string {
    const lines = this.#parts
      .join('')
      .split('\n')
      .map((line) => line.trimEnd());
    // Only line breaks are trimmed at the start: a leading <pre> keeps its indentation.
    return lines
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .replace(/^\n+/, '')
      .trimEnd();
  }

  #append(text: string): void {
    this.#parts.push(text);
    let newlines = 0;
    for (let i = text.length - 1; i >= 0 && text[i] === '\n'; i--) newlines++;
    this.#trailingNewlines = newlines === text.length ? this.#trailingNewlines + newlines : newlines;
    this.#lastChar = text[text.length - 1]!;
  }

  #flushBreak(): void {
    if (this.#pendingBreak === 0) return;
    const owed = this.#pendingBreak - this.#trailingNewlines;
    this.#pendingBreak = 0;
    if (this.#parts.length > 0 && owed > 0) this.#append('\n'.repeat(owed));
  }
}

/** Only links a reader can follow are worth printing; `#top` and `javascript:` are not. */
function printableHref(href: string | undefined): string | null {
  if (!href) return null;
  const trimmed = href.trim();
  return /^(https?:|mailto:|tel:)/i.test(trimmed) ? trimmed : null;
}

/** " (url)"; nothing when the text already says the url; the url alone when there is no text. */
function linkSuffix(text: string | null, href: string): string {
  if (text === null) return ` (${href})`;
  const shown = text.trim();
  const bare = href
    .replace(/^(mailto:|tel:)/i, '')
    .replace(/^https?:\/\//i, '')
    .replace(/\/$/, '');
  const shownBare = shown.replace(/^https?:\/\//i, '').replace(/\/$/, '');
  if (shown === '') return href;
  if (shownBare === bare || shown === href) return '';
  return ` (${href})`;
}

interface ListState {
  ordered: boolean;
  next: number;
}

/** Converts an email's HTML to its plain-text alternative. */
export function htmlToText(html: string): string {
  const w = new TextWriter();
  const lists: ListState[] = [];
  const links: { href: string | null; mark: number }[] = [];
  let pre = 0;
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    const textEnd = lt === -1 ? html.length : lt;
    if (textEnd > i) w.text(decodeEntities(html.slice(i, textEnd)), pre > 0);
    if (lt === -1) break;
    if (html.startsWith('<!--', lt)) {
      const close = html.indexOf('-->', lt + 4);
      i = close === -1 ? html.length : close + 3;
      continue;
    }
    if (html[lt + 1] === '!' || html[lt + 1] === '?') {
      const close = html.indexOf('>', lt);
      i = close === -1 ? html.length : close + 1;
      continue;
    }
    const tag = readTag(html, lt);
    if (tag === 'eof') break;
    if (!tag) {
      // A "<" that starts no tag is text (e.g. "a < b").
      w.text('<', pre > 0);
      i = lt + 1;
      continue;
    }
    i = tag.end;
    if (!tag.closing && HIDDEN.has(tag.name)) {
      i = skipHidden(html, tag.name, i);
      continue;
    }
    handleTag(tag, w, lists, links, (delta) => (pre = Math.max(0, pre + delta)));
  }
  return w.result();
}

/** Index just past `</name>`, or the end of the input. Case-insensitive, linear. */
function skipHidden(html: string, name: string, from: number): number {
  const pattern = new RegExp(`</${name}[\\s/>]`, 'gi');
  pattern.lastIndex = from;
  const match = pattern.exec(html);
  if (!match) return html.length;
  const close = html.indexOf('>', match.index);
  return close === -1 ? html.length : close + 1;
}

function handleTag(
  tag: Tag,
  w: TextWriter,
  lists: ListState[],
  links: { href: string | null; mark: number }[],
  adjustPre: (delta: number) => void,
): void {
  const { name, closing } = tag;
  if (name === 'br') return w.lineBreak();
  if (name === 'hr') {
    w.block(2);
    w.prefix('----');
    return w.block(2);
  }
  if (name === 'pre') {
    adjustPre(closing ? -1 : 1);
    return w.block(2);
  }
  if (name === 'ul' || name === 'ol') {
    if (closing) lists.pop();
    else lists.push({ ordered: name === 'ol', next: Number(tag.attributes.get('start') ?? 1) || 1 });
    return w.block(lists.length === 0 ? 2 : 1);
  }
  if (name === 'li') {
    w.block(1);
    if (closing) return;
    const list = lists[lists.length - 1];
    const indent = '  '.repeat(Math.max(0, lists.length - 1));
    w.prefix(list?.ordered ? `${indent}${list.next++}. ` : `${indent}- `);
    return;
  }
  if (name === 'tr') return w.block(1);
  if (name === 'td' || name === 'th') {
    if (!closing) w.text(' ');
    return;
  }
  if (name === 'img' && !closing) {
    const alt = tag.attributes.get('alt')?.trim();
    if (alt) w.text(` ${alt} `);
    return;
  }
  if (name === 'a') {
    if (!closing) {
      links.push({ href: printableHref(tag.attributes.get('href')), mark: w.mark() });
      return;
    }
    const link = links.pop();
    if (link?.href) w.text(linkSuffix(w.since(link.mark, 2048), link.href));
    return;
  }
  if (BLOCK.has(name)) w.block(2);
}
