import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCode } from './net.ts';

/*
 * What the campaign crash test needs besides the two processes of delivery-crash-processes.ts: a
 * keep-alive JSON client of Herald (100,000 requests through fetch cost the test process more CPU
 * than Herald's edge on a 2-core machine), the cohort of recipients loaded through the public API,
 * and polls that ride out the moments when Herald is being killed and restarted.
 */

export interface ApiAnswer {
  status: number;
  body: any;
}

/** A JSON client of one Herald over keep-alive connections; its URL stays valid across restarts. */
export class HeraldClient {
  readonly #agent: http.Agent;

  constructor(
    readonly url: string,
    readonly key: string,
    maxSockets = 64,
  ) {
    this.#agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<ApiAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        `${this.url}${path}`,
        { method, agent: this.#agent, headers, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(
          Object.assign(new Error(`${method} ${path} timed out after ${timeoutMs} ms`), {
            code: 'TimeoutError',
          }),
        ),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** GET that must answer 200; connection errors and 503 are retried (Herald may be restarting) until `timeoutMs`. */
  async get(path: string, timeoutMs = 60_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let problem: string;
      try {
        const r = await this.request('GET', path);
        if (r.status === 200) return r.body;
        problem = `${r.status} ${JSON.stringify(r.body).slice(0, 500)}`;
        if (r.status !== 503) throw new Error(`GET ${path} answered ${problem}`);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith(`GET ${path} answered`)) throw error;
        problem = errorCode(error);
      }
      if (Date.now() > deadline)
        throw new Error(`GET ${path} did not answer 200 within ${timeoutMs} ms: ${problem}`);
      await sleep(100);
    }
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** One recipient of the campaign: a profile with one iOS installation and a random APNs token. */
export interface Recipient {
  customId: string;
  installId: string;
  token: string;
}

export function cohortOf(n: number, prefix: string): Recipient[] {
  return Array.from({ length: n }, (_, i) => ({
    customId: `${prefix}-u${i}`,
    installId: `${prefix}-i${i}`,
    token: randomBytes(32).toString('hex'),
  }));
}

/**
 * POSTs `count` bodies with `concurrency` requests in flight; retries Herald's back-pressure answers
 * (429, 503) and connection errors a bounded number of times, fails on anything else.
 */
async function postMany(
  client: HeraldClient,
  path: string,
  count: number,
  concurrency: number,
  bodyOf: (i: number) => unknown,
): Promise<number> {
  let next = 0;
  let retries = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const body = bodyOf(i);
      for (let attempt = 1; ; attempt++) {
        let status: string;
        try {
          const r = await client.request('POST', path, body);
          if (r.status === 202 || r.status === 200) break;
          status = `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
          if (r.status !== 429 && r.status !== 503) throw new Error(`POST ${path} answered ${status}`);
        } catch (error) {
          if (error instanceof Error && error.message.startsWith(`POST ${path} answered`)) throw error;
          status = errorCode(error);
        }
        if (attempt >= 20) throw new Error(`POST ${path} still failed after ${attempt} attempts: ${status}`);
        retries++;
        await sleep(100 * attempt);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return retries;
}

export interface LoadResult {
  profilesMs: number;
  installationsMs: number;
  appliedMs: number;
  retries: number;
}

/**
 * Loads the cohort through the public API: POST /v1/profiles/update in batches of 1,000 (the
 * `cohort` attribute), then one POST /v1/installations per recipient (there is no batch endpoint),
 * then waits until POST /v1/segments/estimate reaches every one of them on push.
 */
export async function loadCohort(
  client: HeraldClient,
  recipients: Recipient[],
  cohort: string,
  concurrency: number,
  timeoutMs: number,
): Promise<LoadResult> {
  const t0 = Date.now();
  const batches = Math.ceil(recipients.length / 1000);
  let retries = await postMany(client, '/v1/profiles/update', batches, 4, (b) =>
    recipients
      .slice(b * 1000, (b + 1) * 1000)
      .map((r) => ({ identifiers: { custom_id: r.customId }, attributes: { cohort } })),
  );
  const t1 = Date.now();
  retries += await postMany(client, '/v1/installations', recipients.length, concurrency, (i) => {
    const r = recipients[i]!;
    return {
      install_id: r.installId,
      custom_id: r.customId,
      platform: 'ios',
      push_token: r.token,
      push_enabled: true,
    };
  });
  const t2 = Date.now();
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const r = await client.request('POST', '/v1/segments/estimate', {
      segment: { attribute: 'cohort', op: 'eq', value: cohort },
    });
    last = r.body;
    if (r.status === 200 && r.body.reachable?.push?.any === recipients.length) break;
    if (Date.now() > deadline)
      throw new Error(`the cohort was not applied within ${timeoutMs} ms: ${JSON.stringify(last)}`);
    await sleep(500);
  }
  return { profilesMs: t1 - t0, installationsMs: t2 - t1, appliedMs: Date.now() - t2, retries };
}
