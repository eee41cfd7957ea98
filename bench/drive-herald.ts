/**
 * One HTTP load phase against a fresh `herald start`, for profiling and what-if comparisons
 * (the full, recorded benchmark is `npm run bench:ingest`). Prints one JSON line: throughput,
 * latency, CPU per event per thread, peak RSS.
 *
 *   node --import tsx bench/drive-herald.ts [--items 1] [--connections 64] [--duration 8]
 *        [--node-arg=--cpu-prof --node-arg=--cpu-prof-dir=/tmp/prof] [--bin path/to/herald.mjs]
 *
 * With --cpu-prof, summarise afterwards with
 *   node --import tsx bench/cpuprofile-top.ts /tmp/prof --last-ms <duration in ms> --inclusive
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort, HeraldChild, round, threadCpuDelta } from './lib/herald-child.ts';
import { bodySequence } from './lib/payloads.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '1' },
    connections: { type: 'string', default: '64' },
    duration: { type: 'string', default: '8' },
    'node-arg': { type: 'string', multiple: true, default: [] },
    bin: { type: 'string' },
  },
});
const items = Number(values.items);
const connections = Number(values.connections);
const duration = Number(values.duration);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-drive-'));
const herald = await HeraldChild.start({
  dataDir: dir,
  port: await freePort(),
  nodeArgs: values['node-arg'],
  bin: values.bin,
});
try {
  const next = bodySequence(items, 0);
  const before = await herald.ready();
  const threads0 = herald.threadCpu();
  const self0 = process.cpuUsage();
  const result = await autocannon({
    url: herald.url,
    connections,
    duration,
    requests: [
      {
        method: 'POST',
        path: '/v1/profiles/update',
        headers: { authorization: `Bearer ${herald.secretKey}`, 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: next() }),
      },
    ],
  });
  const self = process.cpuUsage(self0);
  const after = await herald.ready();
  const events = result['2xx'] * items;
  const threads = threadCpuDelta(herald.pid, threads0, herald.threadCpu());
  process.stdout.write(
    `${JSON.stringify({
      items,
      connections,
      duration_s: result.duration,
      events_per_s: Math.round(events / result.duration),
      latency_ms: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
      non_2xx: result.non2xx,
      rows_appended: after.log.head_seq - before.log.head_seq,
      rows_applied: after.store.applied_seq - before.store.applied_seq,
      threads_cpu_us_per_event: threads.map((t) => ({
        thread: t.thread,
        us: round((t.cpu_s * 1e6) / Math.max(1, events), 1),
      })),
      load_generator_cpu_us_per_event: round((self.user + self.system) / Math.max(1, events), 1),
      peak_rss_mb: round(herald.statusMb('VmHWM')),
      ...(herald.startupWarning ? { startup_warning: herald.startupWarning } : {}),
    })}\n`,
  );
} finally {
  await herald.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
