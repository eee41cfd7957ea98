#!/usr/bin/env node
// The `herald` command. Runs Herald's JavaScript build (made from src/ on first use after a change,
// in about a second); if it cannot be built, runs the TypeScript sources through tsx instead.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

let entry;
try {
  const { ensureBuilt } = await import('../scripts/build.mjs');
  entry = pathToFileURL(path.join(await ensureBuilt(), 'cli.js')).href;
} catch (error) {
  if (process.env.HERALD_DEBUG === '1') process.stderr.write(`herald: build failed, running from sources: ${error}\n`);
  const { register } = await import('tsx/esm/api');
  register();
  entry = new URL('../src/cli/main.ts', import.meta.url).href;
}
await import(entry);
