// Builds Herald's runnable JavaScript from src/ into dist/<stamp>/ with esbuild, once per source
// state. `bin/herald.mjs` calls `ensureBuilt()`; `npm run build` runs it by hand.
//
// Why: running the TypeScript through tsx costs a loader thread and a compiler in every isolate
// (the main thread and each worker thread), about 30 MB each, and seconds of start-up. The bundle
// is plain ESM with the npm packages left external, so behaviour is the same code as src/.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRIES = {
  cli: 'src/cli/main.ts',
  'applier-thread': 'src/runtime/applier-thread.ts',
  'log-writer-thread': 'src/runtime/log-writer-thread.ts',
  'delivery-thread': 'src/runtime/delivery-thread.ts',
  'orchestrator-thread': 'src/runtime/orchestrator-thread.ts',
  'sqlite-query-thread': 'src/runtime/sqlite-query-thread.ts',
};

function walk(dir, out) {
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    if (stat.isDirectory()) walk(file, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.contract.ts')) out.push([file, stat]);
  }
  return out;
}

/** A stamp of the sources: changes whenever a source file is added, removed or modified. */
export function sourceStamp() {
  const hash = crypto.createHash('sha256');
  const files = walk(path.join(root, 'src'), []).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [file, stat] of files) hash.update(`${path.relative(root, file)}:${stat.size}:${stat.mtimeMs}\n`);
  const pkg = fs.statSync(path.join(root, 'package.json'));
  hash.update(`package.json:${pkg.size}:${pkg.mtimeMs}`);
  return hash.digest('hex').slice(0, 16);
}

/** Builds dist/<stamp>/ if it is missing and returns its directory. Safe to race: the rename is atomic. */
export async function ensureBuilt() {
  const stamp = sourceStamp();
  const target = path.join(root, 'dist', stamp);
  if (fs.existsSync(path.join(target, 'cli.js'))) return target;
  const { build } = await import('esbuild');
  const temp = `${target}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  await build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir: temp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    chunkNames: 'chunk-[hash]',
    sourcemap: 'linked',
    logLevel: 'silent',
  });
  try {
    fs.renameSync(temp, target);
  } catch {
    fs.rmSync(temp, { recursive: true, force: true }); // another process built it first
  }
  removeStale(stamp);
  return target;
}

function removeStale(keep) {
  const dist = path.join(root, 'dist');
  for (const name of fs.readdirSync(dist)) {
    if (name === keep || name.includes('.tmp-')) continue;
    const dir = path.join(dist, name);
    // Leave builds a running process may still use for a while.
    if (Date.now() - fs.statSync(dir).mtimeMs > 3_600_000) fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await ensureBuilt();
  process.stdout.write(`built ${path.relative(root, dir)}\n`);
}
