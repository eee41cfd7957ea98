import http from 'node:http';

export interface JsonAnswer {
  status: number;
  body: string;
}

/** One JSON request over a keep-alive agent; resolves with the status and the body text. */
export function requestJson(agent: http.Agent, url: string, method: string, headers: Record<string, string>, body?: string): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * POSTs `count` JSON bodies (made by `bodyOf(i)`) to `url` with `concurrency` requests in flight on
 * keep-alive connections; retries a request answered 429/503 (Herald's back-pressure) after a
 * short pause, and fails on any other non-2xx answer. Returns the elapsed time.
 */
export async function postMany(options: {
  url: string;
  headers: Record<string, string>;
  count: number;
  concurrency: number;
  bodyOf: (i: number) => string;
}): Promise<{ elapsedMs: number; retries: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  let next = 0;
  let retries = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < options.count) {
      const i = next++;
      const body = options.bodyOf(i);
      for (;;) {
        const answer = await requestJson(agent, options.url, 'POST', options.headers, body);
        if (answer.status >= 200 && answer.status < 300) break;
        if (answer.status === 429 || answer.status === 503) {
          retries++;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        throw new Error(`POST ${options.url} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { elapsedMs: performance.now() - t0, retries };
}
