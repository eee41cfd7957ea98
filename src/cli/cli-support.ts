import { InvalidArgumentError, type Command } from 'commander';
import { debugEnabled, loadConfig, type ConfigOverrides, type HeraldConfig } from '../config/config.ts';
import type { ControlPlane } from '../control/control-plane.ts';
import { openControlPlane } from '../runtime/open-control-plane.ts';
import { systemClock } from '../core/clock.ts';
import { coerceError, isHeraldError } from '../core/errors.ts';
import { silentLogger } from '../core/logger.ts';

/** Options every command takes. */
export interface CommonOptions {
  dataDir?: string;
  databaseUrl?: string;
}

export function addCommonOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory (default: $HERALD_DATA_DIR or ./.herald)')
    .option('--database-url <url>', 'PostgreSQL URL of the control plane (default: $HERALD_DATABASE_URL; unset = embedded SQLite)');
}

export function configFrom(options: CommonOptions & ConfigOverrides): HeraldConfig {
  return loadConfig({
    dataDir: options.dataDir,
    databaseUrl: options.databaseUrl,
    port: options.port,
    host: options.host,
    logLevel: options.logLevel,
    sandbox: options.sandbox,
  });
}

/**
 * Opens the control plane for one command and closes it afterwards. Commands that only read or
 * change existing data refuse a data dir with no Herald in it (a typo would otherwise create one).
 */
export async function withControl<T>(
  options: CommonOptions,
  fn: (control: ControlPlane, config: HeraldConfig) => Promise<T>,
  mode: { create: boolean } = { create: false },
): Promise<T> {
  const config = configFrom(options);
  const control = await openControlPlane(config, { clock: systemClock, logger: silentLogger }, mode);
  try {
    return await fn(control, config);
  } finally {
    await control.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain text table: a header row and aligned columns. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(headers)}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

export function isoOrDash(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

/**
 * Runs a command's action: a user mistake or an expected failure prints one line and exits 1;
 * only an unexpected error shows its stack, and only with HERALD_DEBUG=1.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      const e = coerceError(error);
      const message = isHeraldError(e) ? e.message : describe(e);
      process.stderr.write(`herald: error: ${message}\n`);
      if (debugEnabled() && !isHeraldError(e)) process.stderr.write(`${e.stack ?? ''}\n`);
      process.exit(1);
    }
  };
}

function describe(error: Error): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return `cannot connect to the database (${error.message})`;
  if (code === 'EADDRINUSE') return `${error.message}; is another Herald running? Choose another port with --port.`;
  if (code === 'SQLITE_CANTOPEN') return `cannot open a SQLite file: ${error.message}`;
  const file = (error as { path?: unknown }).path;
  if ((code === 'ENOENT' || code === 'EACCES' || code === 'EROFS') && typeof file === 'string') {
    return `cannot create or open ${file} (${code}); check --data-dir`;
  }
  return error.message;
}

export function parsePositiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number of 1 or more.`);
    return n;
  };
}
