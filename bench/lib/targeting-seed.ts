/**
 * Seeds the targeting benchmark's SQLite cell store (run as a child process by
 * bench/targeting-bench.ts, so the generator's memory does not count against the evaluating
 * process): `node --import tsx bench/lib/targeting-seed.ts <file> <profiles> <events>`.
 *
 * The file is created by SqliteCellStore.open (Herald's migrations), then filled through a raw
 * better-sqlite3 connection (WAL, synchronous=OFF for the seed only, large transactions) with the
 * rows Herald's applier would have written. It is written under "<file>.partial" and renamed when
 * complete, so an interrupted seed is never reused.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteCellStore } from '../../src/storage/sqlite/sqlite-cell-store.ts';
import { inferAttributeType } from '../../src/profiles/attribute-types.ts';
import { seedAudiences, seedSends } from './targeting-seed-history.ts';
import { BulkInsert, Committer, dropSecondaryIndexes } from './targeting-seed-writer.ts';
import {
  DAY_MS,
  EVENT_CODE,
  EVENT_NAMES,
  GENERATOR_VERSION,
  HISTORY_DAYS,
  NOW_MS,
  PROJECT_ID,
  Prng,
  activeUntil,
  eventAttributes,
  eventsPerProfile,
  installationRows,
  profileRow,
} from './targeting-data.ts';

export interface SeedInfo {
  generator_version: number;
  profiles: number;
  events: number;
  event_counts_rows: number;
  installations: number;
  suppressions: number;
  audiences: Record<string, number>;
  messages: number;
  seed_seconds: number;
  db_mb: number;
}

/** Tables whose secondary indexes are built after the load (profiles and installations keep theirs: the sends read them). */
const BULK_TABLES = ['events', 'event_counts', 'messages', 'message_events'];
const HISTORY_START_MS = NOW_MS - HISTORY_DAYS * DAY_MS;

function progress(message: string): void {
  process.stderr.write(`[bench:targeting seed ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Profiles, their installations, email suppressions and the attribute catalog. Returns created_at per profile. */
function seedProfiles(
  db: Database.Database,
  profiles: number,
): { createdAt: Float64Array; installations: number; suppressions: number } {
  const rng = new Prng(0x5eed0001);
  const profileRows = new BulkInsert(db, 'profiles', [
    'project_id',
    'custom_id',
    'email',
    'email_marketing',
    'phone',
    'sms_marketing',
    'language',
    'region',
    'timezone',
    'attributes',
    'created_at',
    'updated_at',
  ]);
  const installRows = new BulkInsert(db, 'installations', [
    'project_id',
    'install_id',
    'profile_id',
    'platform',
    'push_token',
    'web_push',
    'push_enabled',
    'push_disabled_reason',
    'app_version',
    'last_seen_at',
    'created_at',
    'updated_at',
  ]);
  const suppressed = db.prepare(
    'INSERT INTO suppressions (project_id, channel, address, reason, created_at) VALUES (?, ?, ?, ?, ?)',
  );
  const commit = new Committer(db, 50_000, () => {
    profileRows.flush();
    installRows.flush();
  });
  const attributeTypes = new Map<string, string>();
  const createdAt = new Float64Array(profiles + 1);
  let installations = 0;
  let suppressions = 0;
  for (let id = 1; id <= profiles; id++) {
    const p = profileRow(id, rng);
    const updatedAt = Math.max(p.createdAt, NOW_MS - rng.int(HISTORY_DAYS * DAY_MS));
    createdAt[id] = p.createdAt;
    profileRows.add(
      PROJECT_ID,
      p.customId,
      p.email,
      p.emailMarketing,
      p.phone,
      p.smsMarketing,
      p.language,
      p.region,
      p.timezone,
      JSON.stringify(p.attributes),
      p.createdAt,
      updatedAt,
    );
    for (const [name, value] of Object.entries(p.attributes))
      if (!attributeTypes.has(name)) attributeTypes.set(name, inferAttributeType(value));
    for (const i of installationRows(id, rng)) {
      const seen = Math.max(p.createdAt, NOW_MS - rng.int(HISTORY_DAYS * DAY_MS));
      installRows.add(
        PROJECT_ID,
        i.installId,
        id,
        i.platform,
        i.pushToken,
        i.webPush,
        i.pushEnabled,
        i.pushDisabledReason,
        i.appVersion,
        seen,
        p.createdAt,
        seen,
      );
      installations++;
    }
    if (p.email && rng.chance(0.005)) {
      // A hard bounce, as the dispatcher's 'suppress-address' effect records it.
      suppressed.run(
        PROJECT_ID,
        'email',
        p.email,
        'hard bounce (550 5.1.1 user unknown)',
        NOW_MS - rng.int(HISTORY_DAYS * DAY_MS),
      );
      suppressions++;
    }
    commit.tick();
    if (id % 200_000 === 0)
      progress(`profiles ${id.toLocaleString('en')} / ${profiles.toLocaleString('en')}`);
  }
  const catalog = db.prepare(
    'INSERT INTO catalog (project_id, kind, name, type, first_seen_at) VALUES (?, ?, ?, ?, ?)',
  );
  for (const [name, type] of attributeTypes)
    catalog.run(PROJECT_ID, 'attribute', name, type, HISTORY_START_MS);
  commit.finish();
  return { createdAt, installations, suppressions };
}

interface GeneratedEvents {
  profileId: Int32Array;
  code: Uint8Array;
  time: Float64Array;
}

/**
 * Every profile's events (name, time), with the per-profile `event_counts` aggregate written as
 * they are generated: it is, by construction, what the events table implies.
 */
function generateEvents(
  db: Database.Database,
  createdAt: Float64Array,
  total: number,
): { events: GeneratedEvents; countRows: number } {
  const profiles = createdAt.length - 1;
  const perProfile = eventsPerProfile(profiles, total, new Prng(0x5eed0002));
  const rng = new Prng(0x5eed0003);
  const events: GeneratedEvents = {
    profileId: new Int32Array(total),
    code: new Uint8Array(total),
    time: new Float64Array(total),
  };
  const counts = new BulkInsert(db, 'event_counts', ['profile_id', 'name', 'count', 'first_at', 'last_at']);
  const commit = new Committer(db, 50_000, () => counts.flush());
  const names = EVENT_NAMES.map(([name], code) => ({ name, code })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  );
  const n = new Uint32Array(EVENT_NAMES.length);
  const first = new Float64Array(EVENT_NAMES.length);
  const last = new Float64Array(EVENT_NAMES.length);
  const seen = new Set<number>();
  let at = 0;
  let countRows = 0;
  for (let id = 1; id <= profiles; id++) {
    const start = Math.max(HISTORY_START_MS, createdAt[id]!);
    const end = Math.max(start + 1, activeUntil(rng));
    n.fill(0);
    for (let k = perProfile[id - 1]!; k > 0; k--) {
      const code = EVENT_CODE.draw(rng);
      const time = Math.min(NOW_MS, start + Math.floor(rng.next() * (end - start)));
      events.profileId[at] = id;
      events.code[at] = code;
      events.time[at++] = time;
      if (n[code]!++ === 0) {
        first[code] = time;
        last[code] = time;
      } else {
        first[code] = Math.min(first[code]!, time);
        last[code] = Math.max(last[code]!, time);
      }
    }
    for (const { name, code } of names) {
      if (n[code] === 0) continue;
      counts.add(id, name, n[code]!, first[code]!, last[code]!);
      seen.add(code);
      countRows++;
    }
    commit.tick();
    if (id % 200_000 === 0)
      progress(`event histories ${id.toLocaleString('en')} / ${profiles.toLocaleString('en')} profiles`);
  }
  const catalog = db.prepare(
    'INSERT INTO catalog (project_id, kind, name, type, first_seen_at) VALUES (?, ?, ?, ?, ?)',
  );
  for (const code of seen) catalog.run(PROJECT_ID, 'event', EVENT_NAMES[code]![0], 'event', HISTORY_START_MS);
  commit.finish();
  return { events, countRows };
}

/** Inserts the events in arrival (time) order, as the applier would have: ids grow with time, profiles interleave. */
function insertEvents(db: Database.Database, events: GeneratedEvents): void {
  const total = events.time.length;
  const minute = (t: number): number => Math.floor((t - HISTORY_START_MS) / 60_000);
  const buckets = new Uint32Array(minute(NOW_MS) + 2);
  for (let i = 0; i < total; i++) buckets[minute(events.time[i]!) + 1]!++;
  for (let b = 1; b < buckets.length; b++) buckets[b]! += buckets[b - 1]!;
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[buckets[minute(events.time[i]!)]!++] = i;
  const rng = new Prng(0x5eed0004);
  const rows = new BulkInsert(db, 'events', [
    'profile_id',
    'name',
    'time',
    'client_id',
    'attributes',
    'received_at',
  ]);
  const commit = new Committer(db, 500_000, () => rows.flush());
  for (let k = 0; k < total; k++) {
    const i = order[k]!;
    const code = events.code[i]!;
    const time = events.time[i]!;
    rows.add(
      events.profileId[i]!,
      EVENT_NAMES[code]![0],
      time,
      null,
      eventAttributes(code, rng),
      time + rng.int(20_000),
    );
    commit.tick();
    if ((k + 1) % 2_000_000 === 0)
      progress(`events ${(k + 1).toLocaleString('en')} / ${total.toLocaleString('en')}`);
  }
  commit.finish();
}

export async function seedDatabase(file: string, profiles: number, events: number): Promise<SeedInfo> {
  const started = performance.now();
  const partial = `${file}.partial`;
  for (const f of [partial, `${partial}-wal`, `${partial}-shm`]) fs.rmSync(f, { force: true });
  await (await SqliteCellStore.open(partial)).close(); // Herald's own migrations create the schema
  const db = new Database(partial);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF'); // the seed only: a crash here just means reseeding
  db.pragma('cache_size = -262144');
  const indexes = dropSecondaryIndexes(db, BULK_TABLES);
  const p = seedProfiles(db, profiles);
  const generated = generateEvents(db, p.createdAt, events);
  progress(`generated ${events.toLocaleString('en')} events; inserting them in time order`);
  insertEvents(db, generated.events);
  const audiences = seedAudiences(db, profiles);
  const messages = seedSends(db);
  for (const index of indexes) {
    const t0 = performance.now();
    db.exec(index.sql);
    progress(`index ${index.name} built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  progress('ANALYZE');
  db.exec('ANALYZE');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  fs.renameSync(partial, file);
  const info: SeedInfo = {
    generator_version: GENERATOR_VERSION,
    profiles,
    events,
    event_counts_rows: generated.countRows,
    installations: p.installations,
    suppressions: p.suppressions,
    audiences,
    messages,
    seed_seconds: Math.round((performance.now() - started) / 100) / 10,
    db_mb: Math.round(fs.statSync(file).size / 1048576),
  };
  fs.writeFileSync(`${file}.json`, `${JSON.stringify(info, null, 2)}\n`);
  return info;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, profiles, events] = process.argv.slice(2);
  if (!file || !profiles || !events) throw new Error('usage: targeting-seed.ts <file> <profiles> <events>');
  const info = await seedDatabase(file, Number(profiles), Number(events));
  progress(`done in ${info.seed_seconds} s, ${info.db_mb} MB`);
}
