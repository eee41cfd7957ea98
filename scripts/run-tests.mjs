// Runs every *.test.ts under src/ and test/ with node:test (Node 20 does not expand globs itself).
// Extra arguments are passed through, e.g. `npm run test:unit -- --test-name-pattern=crash`,
// or file paths to run only those files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) find(file, out);
    else if (name.endsWith('.test.ts')) out.push(file);
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith('.ts'));
const flags = args.filter((a) => !a.endsWith('.ts'));
const list = files.length > 0 ? files : [...find('src'), ...find('test')].sort();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', ...flags, ...list],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
