/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): self time per function and per
 * package/area, busiest first, and inclusive time of selected functions. One report per file
 * (Node writes one file per thread: the main thread and each worker).
 *
 *   node --import tsx bench/cpuprofile-top.ts <file-or-dir>... [--top 25] [--last-ms N] [--inclusive] [--json]
 *
 * --last-ms N keeps only the samples of the last N ms of each profile: Herald writes its profiles
 * when it exits, so this isolates the load phase from start-up (module loading, schema compiling).
 */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const clean = url.replace(/^file:\/\//, '').replace(/\?.*$/, '');
  const nm = clean.lastIndexOf('node_modules/');
  if (nm >= 0) return clean.slice(nm + 'node_modules/'.length);
  const src = clean.indexOf('/src/');
  if (src >= 0) return clean.slice(src + 1);
  const bench = clean.indexOf('/bench/');
  if (bench >= 0) return clean.slice(bench + 1);
  return clean;
}

/** The area a frame belongs to: a package, a Herald source folder, node internals or V8 states. */
function areaOf(frame: CallFrame): string {
  const url = shortUrl(frame.url);
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (url.startsWith('node:')) return url.split('/')[0]!;
  if (url.startsWith('src/')) return url.split('/').slice(0, 2).join('/');
  const parts = url.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

export interface ProfileSummary {
  file: string;
  wall_ms: number;
  sampled_ms: number;
  busy_ms: number;
  top_functions: { self_ms: number; self_pct_of_busy: number; fn: string; at: string }[];
  by_area: { area: string; self_ms: number; pct_of_busy: number }[];
  /** Time in a function or anything it called (recursion counted once). */
  top_inclusive: { total_ms: number; total_pct_of_busy: number; fn: string; at: string }[];
}

/** `lastMs`: only samples from the last `lastMs` ms of the profile (e.g. the load phase before exit). */
export function summarise(file: string, top: number, lastMs = Infinity): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const fromUs = profile.endTime - lastMs * 1000;
  let sampled = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dtUs = profile.timeDeltas[i] ?? 0;
    at += dtUs;
    if (at < fromUs) return;
    const dt = dtUs / 1000;
    sampled += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  // Inclusive time: walk each sampled node's ancestry once per sample, counting each function once.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frameKey = (frame: CallFrame): string =>
    `${frame.functionName}@${frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''}`;
  const inclusive = new Map<string, { ms: number; fn: string; at: string }>();
  for (const [id, ms] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const key = frameKey(frame);
      if (seen.has(key) || frame.functionName === '(root)') continue;
      seen.add(key);
      const entry = inclusive.get(key) ?? {
        ms: 0,
        fn: frame.functionName || '(anonymous)',
        at: key.slice(key.indexOf('@') + 1),
      };
      entry.ms += ms;
      inclusive.set(key, entry);
    }
  }
  const perFunction = new Map<string, { ms: number; fn: string; at: string }>();
  const perArea = new Map<string, number>();
  let idle = 0;
  for (const [id, ms] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += ms;
      continue;
    }
    const at = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName}@${at}`;
    const entry = perFunction.get(key) ?? { ms: 0, fn: frame.functionName || '(anonymous)', at };
    entry.ms += ms;
    perFunction.set(key, entry);
    const area = areaOf(frame);
    perArea.set(area, (perArea.get(area) ?? 0) + ms);
  }
  const busy = sampled - idle;
  const pct = (ms: number): number => Math.round((ms / busy) * 1000) / 10;
  return {
    file: path.basename(file),
    wall_ms: Math.round(Math.min(profile.endTime - profile.startTime, lastMs * 1000) / 1000),
    sampled_ms: Math.round(sampled),
    busy_ms: Math.round(busy),
    top_functions: [...perFunction.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ self_ms: Math.round(f.ms), self_pct_of_busy: pct(f.ms), fn: f.fn, at: f.at })),
    by_area: [...perArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([area, ms]) => ({ area, self_ms: Math.round(ms), pct_of_busy: pct(ms) })),
    top_inclusive: [...inclusive.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ total_ms: Math.round(f.ms), total_pct_of_busy: pct(f.ms), fn: f.fn, at: f.at })),
  };
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const lastAt = args.indexOf('--last-ms');
  const lastMs = lastAt >= 0 ? Number(args[lastAt + 1]) : Infinity;
  const json = args.includes('--json');
  const inclusiveWanted = args.includes('--inclusive');
  const valueAt = new Set([topAt + 1, lastAt + 1].filter((i) => i > 0));
  const inputs = args.filter((a, i) => !a.startsWith('--') && !valueAt.has(i));
  const files = inputs.flatMap((p) =>
    fs.statSync(p).isDirectory()
      ? fs
          .readdirSync(p)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => path.join(p, f))
      : [p],
  );
  for (const file of files.sort()) {
    const s = summarise(file, top, lastMs);
    if (json) {
      process.stdout.write(`${JSON.stringify(s)}\n`);
      continue;
    }
    process.stdout.write(
      `\n== ${s.file}: wall ${s.wall_ms} ms, busy ${s.busy_ms} ms\n-- self time by area\n`,
    );
    for (const a of s.by_area)
      process.stdout.write(
        `${String(a.self_ms).padStart(8)} ms ${String(a.pct_of_busy).padStart(5)}%  ${a.area}\n`,
      );
    if (inclusiveWanted) {
      process.stdout.write('-- top functions by inclusive time\n');
      for (const f of s.top_inclusive) {
        process.stdout.write(
          `${String(f.total_ms).padStart(8)} ms ${String(f.total_pct_of_busy).padStart(5)}%  ${f.fn}  ${f.at}\n`,
        );
      }
    }
    process.stdout.write('-- top functions by self time\n');
    for (const f of s.top_functions) {
      process.stdout.write(
        `${String(f.self_ms).padStart(8)} ms ${String(f.self_pct_of_busy).padStart(5)}%  ${f.fn}  ${f.at}\n`,
      );
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
