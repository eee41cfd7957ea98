/**
 * `npm run bench`: every benchmark area in turn (ingest, delivery, targeting). Each area prints one JSON object
 * per benchmark and its summary last; see BENCHMARKS.md. Extra environment variables pass through.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const AREAS = ['ingest-bench.ts', 'delivery-bench.ts', 'targeting-bench.ts'];

let failed = false;
for (const area of AREAS) {
  const entry = fileURLToPath(new URL(`./${area}`, import.meta.url));
  const result = spawnSync(process.execPath, ['--import', 'tsx', entry], { stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
