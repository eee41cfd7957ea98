import { loadConfig } from '../../src/config/config.ts';
import { createApp, type HeraldApp } from '../../src/app.ts';
import type { Clock } from '../../src/core/clock.ts';
import { dropDatabases, PG_URL, randomDatabaseName } from './services.ts';
import { tempDir } from './temp.ts';

export type Backend = 'sqlite' | 'postgres';

export interface TestApp {
  app: HeraldApp;
  url: string;
  secretKey: string;
  publicKey: string;
  projectId: string;
  dataDir: string;
  /** Calls the API with the demo project's secret key unless headers say otherwise. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/**
 * Starts a real Herald (real HTTP server on a free port, real storage) with a demo project.
 * On PostgreSQL the control plane, cell stores and logs get fresh databases, dropped at stop.
 */
export async function startTestApp(
  backend: Backend = 'sqlite',
  options: { clock?: Clock; env?: Record<string, string> } = {},
): Promise<TestApp> {
  const tmp = tempDir();
  const dbName = randomDatabaseName();
  let databaseUrl: string | undefined;
  if (backend === 'postgres') {
    if (!PG_URL) throw new Error('HERALD_TEST_PG_URL is not set');
    const u = new URL(PG_URL);
    u.pathname = `/${dbName}`;
    databaseUrl = u.toString();
  }
  const config = loadConfig({ dataDir: tmp.dir, port: 0, logLevel: 'silent', databaseUrl }, options.env ?? {});
  const app = await createApp(config, { createDemo: true, ...(options.clock ? { clock: options.clock } : {}) });
  const demo = app.demo!;
  const url = app.url;
  return {
    app,
    url,
    secretKey: demo.secretKey.key,
    publicKey: demo.publicKey.key,
    projectId: demo.project.id,
    dataDir: tmp.dir,
    async api(method, path, body, headers = {}) {
      const res = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${demo.secretKey.key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async stop() {
      await app.stop();
      tmp.remove();
      if (backend === 'postgres') await dropDatabases(dbName);
    },
  };
}
