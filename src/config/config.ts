import path from 'node:path';
import { HeraldError } from '../core/errors.ts';

/** Everything Herald reads from its environment, validated once and frozen. */
export interface HeraldConfig {
  /** Absolute path of the data directory (control plane, SQLite cells, logs). */
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  /**
   * PostgreSQL URL of the control-plane database. When set, Herald runs in the single-server shape:
   * new cells get a PostgreSQL store and a PostgreSQL log, in databases named after this one.
   */
  readonly databaseUrl: string | undefined;
  /** Applied log records are kept this long so that a restore can replay them. */
  readonly logRetentionMs: number;
  /** Appends are refused with 503 LOG_FULL once a cell's log holds this many unapplied records. */
  readonly logMaxPendingRecords: number;
  /** Default per-project API rate limit (requests per second); projects may override it. */
  readonly rateLimitPerSecond: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** A record that fails this many times is quarantined (I5). */
  readonly applierMaxAttempts: number;
  /** Log records the applier takes per store transaction. */
  readonly applierBatchSize: number;
  /** How long an append may wait for the log before the API answers 503. */
  readonly appendTimeoutMs: number;
  /** Base64 of 32 bytes that seal provider credentials; unset: a key file in the data dir. */
  readonly masterKey: string | undefined;
  /** `auto`: run the provider sandbox in this process; `off`; or the URL of a `herald sandbox serve`. */
  readonly sandbox: string;
  /** First port of the sandbox's stand-ins (0: any free ports). */
  readonly sandboxPort: number;
  /** Where recipients and providers reach this Herald (unsubscribe links, status callbacks). */
  readonly publicUrl: string | undefined;
  /** How long a claimed message is reserved for its dispatcher; a dead dispatcher's messages return after this. */
  readonly deliveryLeaseMs: number;
}

export interface ConfigOverrides {
  sandbox?: string | undefined;
  dataDir?: string | undefined;
  host?: string | undefined;
  port?: string | number | undefined;
  databaseUrl?: string | undefined;
  logLevel?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function invalid(message: string): HeraldError {
  return new HeraldError('CONFIG_INVALID', { message });
}

function integer(name: string, raw: string | number | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, got "${String(raw)}".`);
  }
  return value;
}

function postgresUrl(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`${name} is not a URL.`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw invalid(`${name} must be a postgres:// URL.`);
  }
  if (url.pathname.length <= 1) throw invalid(`${name} must name a database (postgres://host/herald).`);
  return raw;
}

function sandboxSetting(raw: string | undefined): string {
  if (raw === undefined || raw === '' || raw === 'auto') return 'auto';
  if (raw === 'off') return 'off';
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.toString().replace(/\/$/, '');
  } catch {
    // reported below
  }
  throw invalid('The sandbox setting (--sandbox or HERALD_SANDBOX) must be "auto", "off" or the http URL of a `herald sandbox serve`.');
}

/** The sandbox sits 1,000 ports above the API (8080 → 9080…), or on free ports when the API's is 0. */
function defaultSandboxPort(apiPort: string | number | undefined): number {
  const port = apiPort === undefined || apiPort === '' ? 8080 : Number(apiPort);
  return Number.isInteger(port) && port > 0 && port + 1000 < 65_000 ? port + 1000 : 0;
}

/**
 * Reads the configuration from command-line overrides and the environment (the only place Herald
 * reads `process.env`). Command-line values win over environment values.
 */
export function loadConfig(overrides: ConfigOverrides = {}, env: Env = process.env): HeraldConfig {
  const dataDir = path.resolve(overrides.dataDir ?? env.HERALD_DATA_DIR ?? '.herald');
  const logLevel = overrides.logLevel ?? env.HERALD_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw invalid(`The log level (--log-level or HERALD_LOG_LEVEL) must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel}".`);
  }
  const retentionDays = integer('HERALD_LOG_RETENTION_DAYS', env.HERALD_LOG_RETENTION_DAYS, 7, 1, 3650);
  return Object.freeze({
    dataDir,
    host: overrides.host ?? env.HERALD_HOST ?? '127.0.0.1',
    port: integer('The port (--port or HERALD_PORT)', overrides.port ?? env.HERALD_PORT, 8080, 0, 65535),
    databaseUrl: postgresUrl('The database URL (--database-url or HERALD_DATABASE_URL)', overrides.databaseUrl ?? env.HERALD_DATABASE_URL),
    logRetentionMs: retentionDays * 86_400_000,
    logMaxPendingRecords: integer('HERALD_LOG_MAX_PENDING', env.HERALD_LOG_MAX_PENDING, 50_000_000, 1, 2 ** 40),
    rateLimitPerSecond: integer('HERALD_RATE_LIMIT', env.HERALD_RATE_LIMIT, 50_000, 1, 10_000_000),
    logLevel: logLevel as HeraldConfig['logLevel'],
    applierMaxAttempts: integer('HERALD_APPLIER_MAX_ATTEMPTS', env.HERALD_APPLIER_MAX_ATTEMPTS, 5, 1, 100),
    applierBatchSize: integer('HERALD_APPLIER_BATCH', env.HERALD_APPLIER_BATCH, 5_000, 1, 100_000),
    appendTimeoutMs: integer('HERALD_APPEND_TIMEOUT_MS', env.HERALD_APPEND_TIMEOUT_MS, 5_000, 10, 120_000),
    masterKey: env.HERALD_MASTER_KEY || undefined,
    sandbox: sandboxSetting(overrides.sandbox ?? env.HERALD_SANDBOX),
    sandboxPort: integer('HERALD_SANDBOX_PORT', env.HERALD_SANDBOX_PORT, defaultSandboxPort(overrides.port ?? env.HERALD_PORT), 0, 65_000),
    publicUrl: env.HERALD_PUBLIC_URL || undefined,
    deliveryLeaseMs: integer('HERALD_DELIVERY_LEASE_MS', env.HERALD_DELIVERY_LEASE_MS, 60_000, 1_000, 3_600_000),
  });
}

/** HERALD_DEBUG=1 shows stack traces of unexpected CLI errors. */
export function debugEnabled(env: Env = process.env): boolean {
  return env.HERALD_DEBUG === '1';
}
