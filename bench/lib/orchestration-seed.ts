/**
 * The orchestration benchmark's Herald data directory, seeded once and cached under
 * .bench/orchestration/: a `herald start` made it (control plane, demo project, keys, master key,
 * empty cell), then its cell store received BENCH_CAMPAIGN_PROFILES profiles with one reachable iOS
 * installation each, written with better-sqlite3 in Herald's schema (the rows Herald's applier
 * writes for POST /v1/installations {install_id, custom_id, platform: ios, push_token, push_enabled}).
 * Planner statistics are what Herald's own bounded `PRAGMA optimize` records (SqliteCellStore.optimize).
 * The directory name carries the generator version, a fingerprint of the store and control-plane
 * migrations and the size; it is built under "<name>.partial" and renamed when complete.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { CONTROL_MIGRATIONS } from '../../src/control/control-migrations.ts';
import { SqliteCellStore } from '../../src/storage/sqlite/sqlite-cell-store.ts';
import { SQLITE_STORE_MIGRATIONS } from '../../src/storage/sqlite/sqlite-store-migrations.ts';
import { BulkInsert, Committer } from './targeting-seed-writer.ts';
import { HeraldChild, freePort, round } from './herald-child.ts';

/** Bump when what is generated changes: the cache is keyed by it. */
const GENERATOR_VERSION = 2;
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** A fixed instant for created_at / last_seen_at, so every seed writes the same rows. */
const SEEDED_AT_MS = Date.parse('2026-01-01T00:00:00Z');
export const STORE_FILE = path.join('cells', 'c1', 'store.db');

export interface SeedInfo {
  generator_version: number;
  profiles: number;
  installations: number;
  project_id: string;
  secret_key: string;
  seed_seconds: number;
  store_mb: number;
}

export interface SeededDir extends SeedInfo {
  dir: string;
  fingerprint: string;
  seeded_this_run: boolean;
}

export const customIdOf = (i: number): string => `u${String(i).padStart(8, '0')}`;
const installIdOf = (i: number): string => `i${String(i).padStart(8, '0')}`;
const pushTokenOf = (i: number): string => createHash('sha256').update(`bench-token-${i}`).digest('hex');

function fingerprint(): string {
  const text = [...SQLITE_STORE_MIGRATIONS, ...CONTROL_MIGRATIONS].map((m) => `${m.version}\n${m.sql}`).join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/** The cached directory for `profiles`, seeded first when missing or when `reseed`. */
export async function seededDir(profiles: number, reseed: boolean, progress: (m: string) => void): Promise<SeededDir> {
  const root = process.env.BENCH_ORCHESTRATION_DIR ?? path.join(REPO, '.bench', 'orchestration');
  const print = fingerprint();
  const dir = path.join(root, `herald-v${GENERATOR_VERSION}-${print}-${profiles}p`);
  const exists = fs.existsSync(path.join(dir, 'seed.json'));
  if (!exists || reseed) {
    progress(`seeding ${dir} (${profiles.toLocaleString('en')} profiles with an iOS installation each)`);
    fs.mkdirSync(root, { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    await seed(dir, profiles, progress);
  } else progress(`reusing ${dir} (BENCH_ORCHESTRATION_RESEED=1 to seed it again)`);
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'seed.json'), 'utf8')) as SeedInfo;
  return { dir, fingerprint: print, ...info, seeded_this_run: !exists || reseed };
}

/** A fresh copy of the cached directory (each run writes a million messages into it). */
export function copyOf(seeded: SeededDir, label: string): string {
  const target = fs.mkdtempSync(path.join(os.tmpdir(), `herald-bench-orchestration-${label}-`));
  fs.cpSync(seeded.dir, target, { recursive: true, filter: (src) => path.basename(src) !== 'seed.json' });
  return target;
}

async function seed(dir: string, profiles: number, progress: (m: string) => void): Promise<void> {
  const started = performance.now();
  const partial = `${dir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  // A first `herald start` creates the control plane, the demo project with its keys, and the cell.
  const herald = await HeraldChild.start({ dataDir: partial, port: await freePort(), env: { HERALD_SANDBOX: 'off' } });
  const projectId = /project id:\s+(prj_[A-Za-z0-9_]+)/.exec(herald.output)?.[1];
  const secretKey = herald.secretKey;
  const code = await herald.stop();
  if (!projectId || code !== 0) throw new Error(`the seeding Herald did not report its project or exited with ${String(code)}:\n${herald.output}`);
  const file = path.join(partial, STORE_FILE);
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF'); // the seed only: an interrupted seed is never reused
    db.pragma('cache_size = -262144');
    writeRows(db, projectId, profiles, progress);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  // Planner statistics as Herald's applier leaves them after such an import (its bounded PRAGMA
  // optimize), not a full ANALYZE: that would also record the empty outbox tables as empty, and
  // SQLite then plans the outbox's settle UPDATE … FROM differently from the store Herald keeps.
  const store = await SqliteCellStore.open(file, { create: false });
  try {
    progress('statistics (SqliteCellStore.optimize)');
    await store.optimize();
  } finally {
    await store.close();
  }
  const info: SeedInfo = {
    generator_version: GENERATOR_VERSION,
    profiles,
    installations: profiles,
    project_id: projectId,
    secret_key: secretKey,
    seed_seconds: round((performance.now() - started) / 1000),
    store_mb: Math.round(fs.statSync(file).size / 1048576),
  };
  fs.writeFileSync(path.join(partial, 'seed.json'), `${JSON.stringify(info, null, 2)}\n`);
  fs.renameSync(partial, dir);
  progress(`seeded in ${info.seed_seconds} s, store ${info.store_mb} MB`);
}

/**
 * Profiles and installations in id order. The installations' triggers (which keep push_reachable)
 * and the secondary indexes of both tables are dropped for the load and recreated verbatim after
 * it, so the file ends with exactly the schema the migrations made; push_reachable is written as
 * the trigger would have computed it (enabled, a token, no refusal: 1).
 */
function writeRows(db: Database.Database, projectId: string, profiles: number, progress: (m: string) => void): void {
  const schema = db
    .prepare("SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL AND tbl_name IN ('profiles', 'installations') ORDER BY type DESC, name")
    .all() as { type: string; name: string; sql: string }[];
  for (const s of schema) db.exec(`DROP ${s.type.toUpperCase()} "${s.name}"`);
  const profileRows = new BulkInsert(db, 'profiles', ['id', 'project_id', 'custom_id', 'attributes', 'created_at', 'updated_at']);
  const installRows = new BulkInsert(db, 'installations', [
    'project_id',
    'install_id',
    'profile_id',
    'platform',
    'push_token',
    'push_enabled',
    'last_seen_at',
    'created_at',
    'updated_at',
    'push_reachable',
  ]);
  const commit = new Committer(db, 50_000, () => {
    profileRows.flush();
    installRows.flush();
  });
  for (let i = 1; i <= profiles; i++) {
    profileRows.add(i, projectId, customIdOf(i), '{}', SEEDED_AT_MS, SEEDED_AT_MS);
    installRows.add(projectId, installIdOf(i), i, 'ios', pushTokenOf(i), 1, SEEDED_AT_MS, SEEDED_AT_MS, SEEDED_AT_MS, 1);
    commit.tick();
    if (i % 200_000 === 0) progress(`profiles ${i.toLocaleString('en')} / ${profiles.toLocaleString('en')}`);
  }
  commit.finish();
  for (const s of schema) db.exec(s.sql);
}
