/**
 * The targeting benchmark's seeded database, cached between runs: the file name carries the
 * generator version, a fingerprint of the store's migrations and the sizes, so any change to what
 * would be generated or to the schema seeds a new file. Seeding runs in a child process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQLITE_STORE_MIGRATIONS } from '../../src/storage/sqlite/sqlite-store-migrations.ts';
import { GENERATOR_VERSION } from './targeting-data.ts';
import type { SeedInfo } from './targeting-seed.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SEEDER = fileURLToPath(new URL('./targeting-seed.ts', import.meta.url));

export function schemaFingerprint(): string {
  const text = SQLITE_STORE_MIGRATIONS.map((m) => `${m.version}\n${m.sql}`).join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

export interface SeededFile extends SeedInfo {
  file: string;
  schema_fingerprint: string;
  seeded_this_run: boolean;
}

/** The cached file for these sizes, seeded first (in a child process) when missing or when `reseed`. */
export async function seededFile(
  profiles: number,
  events: number,
  reseed: boolean,
  progress: (m: string) => void,
): Promise<SeededFile> {
  const dir = process.env.BENCH_TARGETING_DIR ?? path.join(REPO, '.bench', 'targeting');
  const fingerprint = schemaFingerprint();
  const file = path.join(dir, `targeting-v${GENERATOR_VERSION}-${fingerprint}-${profiles}p-${events}e.db`);
  const exists = fs.existsSync(file) && fs.existsSync(`${file}.json`);
  if (!exists || reseed) {
    progress(
      `seeding ${file} (${profiles.toLocaleString('en')} profiles, ${events.toLocaleString('en')} events) in a child process`,
    );
    fs.mkdirSync(dir, { recursive: true });
    for (const f of [file, `${file}.json`, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    await runSeeder(file, profiles, events);
  } else {
    progress(`reusing ${file} (BENCH_TARGETING_RESEED=1 to seed it again)`);
  }
  const info = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as SeedInfo;
  return { file, schema_fingerprint: fingerprint, ...info, seeded_this_run: !exists || reseed };
}

function runSeeder(file: string, profiles: number, events: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', SEEDER, file, String(profiles), String(events)],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`the seeder exited with ${code ?? signal}`)),
    );
  });
}

/** The commit the benchmark ran against, with "+dirty" when src/ has uncommitted changes. */
export function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin', 'package.json'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return null;
  }
}

export function machine(): Record<string, unknown> {
  return {
    nproc: os.availableParallelism(),
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    total_mem_mb: Math.round(os.totalmem() / 1048576),
  };
}
