import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dropDatabases, PG_URL, skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Fault cases of the ingestion API, each naming the invariant it proves:
 * I2 (ingestion outlives the store), I3 (blast radius is one cell), and the 503 answers of issue 2
 * part 8 — a full or unreachable log answers 503 with Retry-After, never a hang, never a 2xx, and
 * a refused request changes nothing (I9).
 *
 * Every request here carries a 15 s abort signal: a hang fails the test instead of stalling it.
 */

type Res = { status: number; body: any; headers: Headers };

const REQUEST_TIMEOUT_MS = 15_000;
/** Cells boot their threads and databases in the background; on a busy 2-core machine that takes seconds. */
const STARTUP_DEADLINE_MS = 60_000;
/** Where nothing listens: a store or log there is unreachable (connection refused). */
const UNREACHABLE = 'postgres://postgres@127.0.0.1:1';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = () => randomBytes(4).toString('hex');

async function call(
  h: TestApp,
  method: string,
  urlPath: string,
  key: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Res> {
  const res = await fetch(h.url + urlPath, {
    method,
    headers: {
      authorization: urlPath.startsWith('/segment/')
        ? `Basic ${Buffer.from(`${key}:`).toString('base64')}`
        : `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

function assertError(res: Res, status: number, code: string, context = ''): void {
  const seen = `${context ? `${context}: ` : ''}got ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`;
  assert.equal(res.status, status, `expected ${status} ${code}; ${seen}`);
  assert.equal(res.body?.error?.code, code, seen);
  assert.ok(typeof res.body.error.message === 'string' && res.body.error.message.length > 0, seen);
  assert.equal(typeof res.body.error.request_id, 'string', seen);
}

function assertRetryAfter(res: Res, context = ''): void {
  const value = res.headers.get('retry-after');
  assert.match(
    value ?? '',
    /^[1-9]\d*$/,
    `${context}: Retry-After must be a positive number of seconds, got ${String(value)}`,
  );
}

/** 503 with this code and a Retry-After header. */
function assertUnavailable(res: Res, code: string, context = ''): void {
  assertError(res, 503, code, context);
  assertRetryAfter(res, context);
}

async function readiness(h: TestApp): Promise<{ status: number; body: any }> {
  const res = await fetch(`${h.url}/v1/ready`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return { status: res.status, body: await res.json() };
}

async function cellStatus(h: TestApp, cellId: string): Promise<any> {
  const { body } = await readiness(h);
  const cell = body.cells.find((c: { id: string }) => c.id === cellId);
  assert.ok(cell, `cell ${cellId} is missing from /v1/ready: ${JSON.stringify(body)}`);
  return cell;
}

/** Polls until `check` returns a value (not undefined), or fails with the last thing seen. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  deadlineMs = STARTUP_DEADLINE_MS,
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Writes one profile to the demo project (cell c1) and reads it back applied: the cell works (I3). */
async function demoRoundTrip(h: TestApp, customId: string): Promise<void> {
  const w = await call(h, 'POST', '/v1/profiles/update', h.secretKey, [
    {
      identifiers: { custom_id: customId },
      attributes: { round: customId },
      events: [{ name: 'ping', id: customId }],
    },
  ]);
  assert.equal(w.status, 202, `demo write: ${JSON.stringify(w.body)}`);
  assert.match(w.body.ingest_id, /^ing_c1_\d+$/);
  const r = await call(h, 'GET', `/v1/profiles/${customId}?wait_for=${w.body.ingest_id}`, h.secretKey);
  assert.equal(r.status, 200, `demo read: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.consistency.applied, true, 'the demo write was not applied within wait_for');
  assert.deepEqual(r.body.attributes, { round: customId });
  assert.deepEqual(r.body.event_counts, { ping: 1 });
}

/** Waits until c1 takes writes and applies them. */
async function warmUp(h: TestApp): Promise<void> {
  await eventually('cell c1 to take and apply writes', async () => {
    const w = await call(h, 'POST', '/v1/profiles/update', h.secretKey, [
      { identifiers: { custom_id: 'warm-up' } },
    ]);
    if (w.status !== 202) return undefined;
    const r = await call(h, 'GET', `/v1/profiles/warm-up?wait_for=${w.body.ingest_id}`, h.secretKey);
    return r.status === 200 && r.body.consistency.applied ? true : undefined;
  });
}

interface CellProject {
  cellId: string;
  secretKey: string;
  publicKey: string;
}

async function cellWithProject(
  h: TestApp,
  cellId: string,
  urls: { storeUrl: string; logUrl: string },
): Promise<CellProject> {
  await h.app.control.createCell(cellId, urls);
  const project = await h.app.control.createProject(`project-${cellId}`, { cellId });
  return { cellId, secretKey: project.secretKey.key, publicKey: project.publicKey.key };
}

/**
 * Waits until a new cell's threads are up: its applier has opened the log and tried the store.
 * A cell starts its log writer and applier threads in the background, and on a busy 2-core machine
 * booting them takes seconds; these tests are about outages, not about start-up.
 */
async function cellStarted(h: TestApp, cellId: string): Promise<void> {
  await eventually(`cell ${cellId} to start`, async () => {
    const cell = await cellStatus(h, cellId);
    return cell.store.state === 'starting' ? undefined : true;
  });
}

/** A cell whose store is unreachable and whose log (SQLite, under the data dir) works. */
async function brokenStoreCell(h: TestApp, prefix: string): Promise<CellProject> {
  const cellId = `${prefix}_${unique()}`;
  const cell = await cellWithProject(h, cellId, {
    storeUrl: `${UNREACHABLE}/nostore`,
    logUrl: `sqlite:cells/${cellId}/log.db`,
  });
  await cellStarted(h, cellId);
  return cell;
}

const oneProfile = (customId: string) => [
  { identifiers: { custom_id: customId }, events: [{ name: 'signed_up', id: `${customId}-e` }] },
];

/**
 * A TCP proxy in front of a log database that can stop answering: `hold` keeps new connections
 * open without a byte in return (a black hole), `stall` freezes established connections in both
 * directions (a partition mid-flight), `resume` lets everything through again.
 */
class StallingProxy {
  readonly databasePrefix = `herald_t_faults_${unique()}`;
  #server: net.Server | undefined;
  #port = 0;
  #upstream: { host: string; port: number } | undefined;
  #holding = false;
  #stalled = false;
  readonly #sockets = new Set<net.Socket>();
  readonly #flushers = new Set<() => void>();

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    this.#server = net.createServer((client) => this.#accept(client));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as net.AddressInfo).port;
  }

  hold(): void {
    this.#holding = true;
  }

  forwardTo(host: string, port: number): void {
    this.#upstream = { host, port };
    this.#holding = false;
  }

  stall(): void {
    this.#stalled = true;
  }

  resume(): void {
    this.#stalled = false;
    for (const flush of this.#flushers) flush();
  }

  close(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#server?.close();
  }

  #accept(client: net.Socket): void {
    this.#sockets.add(client);
    client.on('close', () => this.#sockets.delete(client));
    client.on('error', () => undefined);
    if (this.#holding || !this.#upstream) return; // a black hole: never a byte back
    const server = net.connect(this.#upstream.port, this.#upstream.host);
    this.#sockets.add(server);
    server.on('close', () => {
      this.#sockets.delete(server);
      client.destroy();
    });
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    const toServer: Buffer[] = [];
    const toClient: Buffer[] = [];
    const flush = (): void => {
      if (this.#stalled) return;
      while (toServer.length > 0) server.write(toServer.shift()!);
      while (toClient.length > 0) client.write(toClient.shift()!);
    };
    this.#flushers.add(flush);
    client.on('close', () => this.#flushers.delete(flush));
    client.on('data', (chunk) => {
      toServer.push(chunk);
      flush();
    });
    server.on('data', (chunk) => {
      toClient.push(chunk);
      flush();
    });
  }
}

for (const { backend, skip } of [
  { backend: 'sqlite' as Backend, skip: false as string | false },
  { backend: 'postgres' as Backend, skip: skipWithoutPg },
]) {
  describe(`fault cases of the ingestion API (${backend})`, { skip }, () => {
    describe('a cell whose store is unreachable while its log works', () => {
      let h: TestApp;
      let broken: CellProject;
      let accepted = 0;
      before(async () => {
        h = await startTestApp(backend);
        await warmUp(h);
        broken = await brokenStoreCell(h, 'brokenstore');
      });
      after(async () => {
        await h?.stop();
      });

      it('I2: still accepts every kind of write (202) durably into its log', async () => {
        const w1 = await call(h, 'POST', '/v1/profiles/update', broken.secretKey, [
          ...oneProfile('bs-1'),
          ...oneProfile('bs-2'),
        ]);
        assert.equal(w1.status, 202, JSON.stringify(w1.body));
        assert.equal(w1.body.accepted, 2);
        assert.match(w1.body.ingest_id, new RegExp(`^ing_${broken.cellId}_\\d+$`));
        const w2 = await call(h, 'POST', '/v1/installations', broken.publicKey, {
          install_id: 'bs-dev',
          platform: 'android',
          custom_id: 'bs-1',
          push_token: 'f'.repeat(40),
        });
        assert.equal(w2.status, 202, JSON.stringify(w2.body));
        const w3 = await call(h, 'DELETE', '/v1/profiles/bs-2', broken.secretKey);
        assert.equal(w3.status, 202, JSON.stringify(w3.body));
        const w4 = await call(h, 'POST', '/segment/v1/batch', broken.secretKey, {
          batch: [{ type: 'track', userId: 'bs-3', event: 'Opened', messageId: 'm-1' }],
        });
        assert.equal(w4.status, 200, JSON.stringify(w4.body));
        const w5 = await call(h, 'POST', '/v1/profiles/update', broken.secretKey, oneProfile('bs-4'), {
          'idempotency-key': 'bs-idem',
        });
        const w5again = await call(h, 'POST', '/v1/profiles/update', broken.secretKey, oneProfile('bs-4'), {
          'idempotency-key': 'bs-idem',
        });
        assert.equal(w5.status, 202);
        assert.deepEqual(w5again.body, w5.body);
        accepted = 2 + 1 + 1 + 1 + 1;
        const cell = await cellStatus(h, broken.cellId);
        assert.equal(cell.log.ok, true);
        assert.equal(cell.log.head_seq, accepted, 'every accepted record is in the log');
      });

      it('I2: answers reads with 503 STORE_UNAVAILABLE and Retry-After, without hanging', async () => {
        for (const urlPath of [
          '/v1/profiles/bs-1',
          '/v1/profiles/bs-1/events',
          '/v1/profiles/never-written',
        ]) {
          assertUnavailable(await call(h, 'GET', urlPath, broken.secretKey), 'STORE_UNAVAILABLE', urlPath);
        }
        // Waiting for a write that cannot be applied ends too: after wait_for's bound, still a 503.
        const w = await call(h, 'POST', '/v1/profiles/update', broken.secretKey, oneProfile('bs-5'));
        assert.equal(w.status, 202);
        accepted += 1;
        assertUnavailable(
          await call(h, 'GET', `/v1/profiles/bs-5?wait_for=${w.body.ingest_id}`, broken.secretKey),
          'STORE_UNAVAILABLE',
          'wait_for',
        );
      });

      it('I2, I3: /v1/ready answers 503 naming that cell (store down, log up) while c1 is ready', async () => {
        const report = await eventually('the broken store to be reported', async () => {
          const r = await readiness(h);
          const mine = r.body.cells.find((c: { id: string }) => c.id === broken.cellId);
          return mine?.store.state === 'store_unavailable' ? r : undefined;
        });
        assert.equal(report.status, 503);
        assert.equal(report.body.status, 'not_ready');
        const mine = report.body.cells.find((c: { id: string }) => c.id === broken.cellId);
        assert.equal(mine.ready, false);
        assert.equal(mine.store.ok, false);
        assert.equal(typeof mine.store.error, 'string', 'the store failure carries its reason');
        assert.equal(mine.log.ok, true);
        assert.ok(mine.log.head_seq >= accepted, 'every accepted record is in the log');
        assert.equal(mine.lag, mine.log.head_seq, 'nothing can have been applied');
        const c1 = report.body.cells.find((c: { id: string }) => c.id === 'c1');
        assert.equal(c1.ready, true, JSON.stringify(c1));
        assert.equal(c1.log.ok, true);
        assert.equal(c1.store.ok, true);
      });

      it('I3: meanwhile the demo project in c1 keeps ingesting and reading normally', async () => {
        for (let round = 0; round < 5; round++) {
          const w = await call(
            h,
            'POST',
            '/v1/profiles/update',
            broken.secretKey,
            oneProfile(`bs-round-${round}`),
          );
          assert.equal(w.status, 202);
          assertUnavailable(
            await call(h, 'GET', `/v1/profiles/bs-round-${round}`, broken.secretKey),
            'STORE_UNAVAILABLE',
          );
          await demoRoundTrip(h, `c1-round-${round}`);
        }
        const ready = await cellStatus(h, 'c1');
        assert.equal(ready.ready, true);
      });
    });

    describe('a store that comes back', () => {
      let h: TestApp;
      before(async () => {
        h = await startTestApp(backend);
        await warmUp(h);
      });
      after(async () => {
        await h?.stop();
      });

      it('I2: what its log accepted during the outage is applied once the store returns, exactly once', async () => {
        // A regular file where the store's directory should be: the store cannot be opened until it goes.
        const blocker = `blocked_${unique()}`;
        fs.writeFileSync(path.join(h.dataDir, blocker), 'not a directory');
        const cellId = `returning_${unique()}`;
        const cell = await cellWithProject(h, cellId, {
          storeUrl: `sqlite:${blocker}/store.db`,
          logUrl: `sqlite:cells/${cellId}/log.db`,
        });
        await cellStarted(h, cellId);
        let last = '';
        for (let i = 0; i < 5; i++) {
          const w = await call(h, 'POST', '/v1/profiles/update', cell.secretKey, [
            {
              identifiers: { custom_id: 'back-1' },
              attributes: { step: i },
              events: [{ name: 'step', id: `s-${i}` }],
            },
          ]);
          assert.equal(w.status, 202, JSON.stringify(w.body));
          last = w.body.ingest_id;
        }
        // A client retry of the same event id during the outage must still count once.
        const retry = await call(h, 'POST', '/v1/profiles/update', cell.secretKey, [
          { identifiers: { custom_id: 'back-1' }, events: [{ name: 'step', id: 's-4' }] },
        ]);
        assert.equal(retry.status, 202);
        last = retry.body.ingest_id;
        assertUnavailable(
          await call(h, 'GET', '/v1/profiles/back-1', cell.secretKey),
          'STORE_UNAVAILABLE',
          'during the outage',
        );

        fs.rmSync(path.join(h.dataDir, blocker));
        const profile = await eventually('the backlog to be applied', async () => {
          const r = await call(h, 'GET', `/v1/profiles/back-1?wait_for=${last}`, cell.secretKey);
          return r.status === 200 && r.body.consistency.applied ? r.body : undefined;
        });
        assert.deepEqual(profile.attributes, { step: 4 });
        assert.deepEqual(profile.event_counts, { step: 5 });
        const status = await eventually('the cell to be ready again', async () => {
          const c = await cellStatus(h, cell.cellId);
          return c.ready ? c : undefined;
        });
        assert.equal(status.lag, 0);
      });
    });

    describe('a full log (LOG_FULL)', () => {
      const LIMIT = 3;
      let h: TestApp;
      before(async () => {
        h = await startTestApp(backend, { env: { HERALD_LOG_MAX_PENDING: String(LIMIT) } });
        await warmUp(h);
      });
      after(async () => {
        await h?.stop();
      });

      it(`refuses appends beyond ${LIMIT} unapplied records with 503 LOG_FULL and Retry-After, and never answers 2xx again while full`, async () => {
        const cell = await brokenStoreCell(h, 'full_seq');
        const answers: Res[] = [];
        for (let i = 0; i < 8; i++)
          answers.push(await call(h, 'POST', '/v1/profiles/update', cell.secretKey, oneProfile(`full-${i}`)));
        const statuses = answers.map((r) => r.status).join(',');
        const firstRefusal = answers.findIndex((r) => r.status !== 202);
        assert.ok(firstRefusal > 0, `the log took nothing, or never filled: ${statuses}`);
        for (const r of answers.slice(firstRefusal)) assertUnavailable(r, 'LOG_FULL', statuses);
        assert.ok(
          firstRefusal <= LIMIT,
          `${firstRefusal} records accepted with HERALD_LOG_MAX_PENDING=${LIMIT}: ${statuses}`,
        );
        assert.equal(
          (await cellStatus(h, cell.cellId)).log.head_seq,
          firstRefusal,
          'a refused request reached the log',
        );
      });

      it('keeps the limit under a burst of simultaneous writes', async () => {
        const cell = await brokenStoreCell(h, 'full_burst');
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            call(h, 'POST', '/v1/profiles/update', cell.secretKey, oneProfile(`burst-${i}`)),
          ),
        );
        const statuses = answers.map((r) => r.status).join(',');
        const accepted = answers.filter((r) => r.status === 202).length;
        for (const r of answers.filter((x) => x.status !== 202)) assertUnavailable(r, 'LOG_FULL', statuses);
        assert.ok(
          accepted <= LIMIT,
          `${accepted} of 20 simultaneous writes accepted with HERALD_LOG_MAX_PENDING=${LIMIT}: ${statuses}`,
        );
        assert.equal((await cellStatus(h, cell.cellId)).log.head_seq, accepted);
      });

      it('refuses, whole, one request whose items would overflow the limit', async () => {
        const cell = await brokenStoreCell(h, 'full_batch');
        const items = Array.from({ length: 10 }, (_, i) => oneProfile(`batch-${i}`)[0]);
        assertUnavailable(
          await call(h, 'POST', '/v1/profiles/update', cell.secretKey, items),
          'LOG_FULL',
          '10 items into room for 3',
        );
        assert.equal(
          (await cellStatus(h, cell.cellId)).log.head_seq,
          0,
          'part of a refused request reached the log',
        );
        const fits = await call(h, 'POST', '/v1/profiles/update', cell.secretKey, items.slice(0, LIMIT));
        assert.equal(fits.status, 202, `${LIMIT} items fit in an empty log: ${JSON.stringify(fits.body)}`);
      });

      it('I3: a full cell does not stop another: c1, with the same limit, keeps taking writes its applier keeps up with', async () => {
        const full = await brokenStoreCell(h, 'full_other');
        for (let i = 0; i < LIMIT + 2; i++)
          await call(h, 'POST', '/v1/profiles/update', full.secretKey, oneProfile(`other-${i}`));
        assertUnavailable(
          await call(h, 'POST', '/v1/profiles/update', full.secretKey, oneProfile('other-x')),
          'LOG_FULL',
        );
        for (let round = 0; round < 6; round++) await demoRoundTrip(h, `c1-full-${round}`);
      });
    });

    describe('a log that is unreachable', () => {
      let h: TestApp;
      let noLog: CellProject;
      before(async () => {
        h = await startTestApp(backend);
        await warmUp(h);
        const cellId = `nolog_${unique()}`;
        noLog = await cellWithProject(h, cellId, {
          storeUrl: `sqlite:cells/${cellId}/store.db`,
          logUrl: `${UNREACHABLE}/nolog`,
        });
      });
      after(async () => {
        await h?.stop();
      });

      it('answers every write with 503 LOG_UNAVAILABLE and Retry-After, promptly, and accepts nothing', async () => {
        const writes: [string, string, string, unknown, Record<string, string>?][] = [
          ['POST', '/v1/profiles/update', noLog.secretKey, oneProfile('nl-1')],
          [
            'POST',
            '/v1/profiles/update',
            noLog.secretKey,
            oneProfile('nl-2'),
            { 'idempotency-key': 'nl-idem' },
          ],
          [
            'POST',
            '/v1/installations',
            noLog.publicKey,
            { install_id: 'nl-dev', platform: 'android', custom_id: 'nl-3', push_token: 'f'.repeat(40) },
          ],
          ['DELETE', '/v1/profiles/nl-1', noLog.secretKey, undefined],
          [
            'POST',
            '/segment/v1/batch',
            noLog.secretKey,
            { batch: [{ type: 'identify', userId: 'nl-4', traits: { plan: 'pro' } }] },
          ],
          ['POST', '/segment/v1/track', noLog.secretKey, { userId: 'nl-5', event: 'Opened' }],
        ];
        for (const [method, urlPath, key, body, headers] of writes) {
          assertUnavailable(
            await call(h, method, urlPath, key, body, headers),
            'LOG_UNAVAILABLE',
            `${method} ${urlPath}`,
          );
        }
        // Retried with the same Idempotency-Key, still a refusal, not a replay of something half-done.
        assertUnavailable(
          await call(h, 'POST', '/v1/profiles/update', noLog.secretKey, oneProfile('nl-2'), {
            'idempotency-key': 'nl-idem',
          }),
          'LOG_UNAVAILABLE',
          'idempotent retry',
        );
        // The store works: it has none of it.
        for (const id of ['nl-1', 'nl-2', 'nl-3', 'nl-4', 'nl-5']) {
          assertError(
            await call(h, 'GET', `/v1/profiles/${id}`, noLog.secretKey),
            404,
            'PROFILE_NOT_FOUND',
            id,
          );
        }
        const cell = await cellStatus(h, noLog.cellId);
        assert.equal(cell.log.ok, false);
        assert.equal(typeof cell.log.error, 'string', 'the log failure carries its reason');
        assert.equal(cell.log.head_seq, 0);
        assert.equal(cell.ready, false);
      });

      it('I3: c1 keeps ingesting and reading, and /v1/ready tells the cells apart', async () => {
        for (let round = 0; round < 3; round++) {
          assertUnavailable(
            await call(h, 'POST', '/v1/profiles/update', noLog.secretKey, oneProfile(`nl-r${round}`)),
            'LOG_UNAVAILABLE',
          );
          await demoRoundTrip(h, `c1-nolog-${round}`);
        }
        const report = await readiness(h);
        assert.equal(report.status, 503);
        const byId = new Map(report.body.cells.map((c: { id: string; ready: boolean }) => [c.id, c.ready]));
        assert.equal(byId.get('c1'), true);
        assert.equal(byId.get(noLog.cellId), false);
      });
    });

    describe('a log that stops answering', () => {
      let h: TestApp;
      const proxy = new StallingProxy();
      before(async () => {
        await proxy.start();
        h = await startTestApp(backend, { env: { HERALD_APPEND_TIMEOUT_MS: '1000' } });
        await warmUp(h);
      });
      after(async () => {
        // Release held connections first, or the app's shutdown would wait on them.
        proxy.close();
        await h?.stop();
        await dropDatabases(proxy.databasePrefix);
      });

      it('a log that takes connections but never answers gets 503 LOG_UNAVAILABLE with Retry-After, not a hang', async () => {
        const cellId = `hanging_${unique()}`;
        const cell = await cellWithProject(h, cellId, {
          storeUrl: `sqlite:cells/${cellId}/store.db`,
          logUrl: `postgres://postgres@127.0.0.1:${proxy.port}/${proxy.databasePrefix}_never`,
        });
        proxy.hold();
        assertUnavailable(
          await call(h, 'POST', '/v1/profiles/update', cell.secretKey, oneProfile('hang-1')),
          'LOG_UNAVAILABLE',
          'profiles',
        );
        assertUnavailable(
          await call(h, 'POST', '/v1/installations', cell.publicKey, {
            install_id: 'hang-dev',
            platform: 'android',
            custom_id: 'hang-2',
          }),
          'LOG_UNAVAILABLE',
          'installations',
        );
        await demoRoundTrip(h, 'c1-while-hanging'); // I3
      });

      it('a write refused with 503 while the log was locked never takes effect once the lock is gone (I9)', async () => {
        const cellId = `locked_${unique()}`;
        const cell = await cellWithProject(h, cellId, {
          storeUrl: `sqlite:cells/${cellId}/store.db`,
          logUrl: `sqlite:cells/${cellId}/log.db`,
        });
        await eventually('the cell to take a write', async () => {
          const w = await call(h, 'POST', '/v1/profiles/update', cell.secretKey, oneProfile('lock-before'));
          return w.status === 202 ? w : undefined;
        });
        // Another process holds the log's write lock (a backup tool, a stuck writer, a slow disk).
        const locker = new Database(path.join(h.dataDir, 'cells', cellId, 'log.db'));
        try {
          locker.pragma('busy_timeout = 10000');
          locker.exec('BEGIN IMMEDIATE');
          const refused = await call(
            h,
            'POST',
            '/v1/profiles/update',
            cell.secretKey,
            oneProfile('lock-refused'),
          );
          assertUnavailable(refused, 'LOG_UNAVAILABLE', 'while the log is locked');
          locker.exec('COMMIT');
        } finally {
          locker.close();
        }
        const marker = await eventually('the log to take writes again', async () => {
          const w = await call(h, 'POST', '/v1/profiles/update', cell.secretKey, oneProfile('lock-after'));
          return w.status === 202 ? w : undefined;
        });
        await eventually('the marker to be applied', async () => {
          const r = await call(
            h,
            'GET',
            `/v1/profiles/lock-after?wait_for=${marker.body.ingest_id}`,
            cell.secretKey,
          );
          return r.status === 200 && r.body.consistency.applied ? r : undefined;
        });
        const ghost = await call(h, 'GET', '/v1/profiles/lock-refused', cell.secretKey);
        assertError(
          ghost,
          404,
          'PROFILE_NOT_FOUND',
          'a request answered 503 "nothing was accepted" was applied after all',
        );
      });

      it(
        'a write refused with 503 while the network to a PostgreSQL log stalled never takes effect when it answers again (I9)',
        { skip: skipWithoutPg },
        async () => {
          const cellId = `stalling_${unique()}`;
          const upstream = new URL(PG_URL!);
          const logUrl = new URL(PG_URL!);
          logUrl.host = `127.0.0.1:${proxy.port}`;
          logUrl.pathname = `/${proxy.databasePrefix}_${unique()}`;
          proxy.forwardTo(upstream.hostname, Number(upstream.port || 5432));
          const cell = await cellWithProject(h, cellId, {
            storeUrl: `sqlite:cells/${cellId}/store.db`,
            logUrl: logUrl.toString(),
          });
          // The log works: the cell takes writes.
          const ok = await eventually('the proxied log to take a write', async () => {
            const w = await call(
              h,
              'POST',
              '/v1/profiles/update',
              cell.secretKey,
              oneProfile('stall-before'),
            );
            return w.status === 202 ? w : undefined;
          });
          assert.equal(ok.status, 202);
          // The network to the log stalls mid-flight: the API gives up and says nothing was accepted.
          proxy.stall();
          const refused = await call(
            h,
            'POST',
            '/v1/profiles/update',
            cell.secretKey,
            oneProfile('stall-refused'),
          );
          assertUnavailable(refused, 'LOG_UNAVAILABLE', 'while stalled');
          // The log answers again; later writes go through, and the refused one must not have.
          proxy.resume();
          const marker = await eventually('the log to take writes again', async () => {
            const w = await call(h, 'POST', '/v1/profiles/update', cell.secretKey, oneProfile('stall-after'));
            return w.status === 202 ? w : undefined;
          });
          const read = await eventually('the marker to be applied', async () => {
            const r = await call(
              h,
              'GET',
              `/v1/profiles/stall-after?wait_for=${marker.body.ingest_id}`,
              cell.secretKey,
            );
            return r.status === 200 && r.body.consistency.applied ? r : undefined;
          });
          assert.equal(read.status, 200);
          const ghost = await call(h, 'GET', '/v1/profiles/stall-refused', cell.secretKey);
          assertError(
            ghost,
            404,
            'PROFILE_NOT_FOUND',
            'a request answered 503 "nothing was accepted" was applied after all',
          );
        },
      );
    });
  });
}
