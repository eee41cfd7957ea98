import http from 'node:http';
import type { BehaviorRule, SandboxMessage, ActiveRule } from './sandbox-model.ts';
import type { LocalSandbox, SandboxHandle } from './sandbox.ts';
import { serveHttp } from './listen.ts';

/**
 * The sandbox's own control API, for a sandbox that runs in another process than Herald
 * (`herald sandbox serve`): crash tests kill Herald and still count what the sandbox received.
 *   GET /endpoints · GET /messages?channel=&kind=&to=&limit=&after_id= · GET /counts
 *   POST /behaviors (a BehaviorRule) · DELETE /behaviors · POST /trust {kind, id, material}
 */
export async function serveSandboxControl(sandbox: LocalSandbox, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(sandbox, req, Buffer.concat(chunks).toString('utf8')).then(
        ([status, body]) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
        (error: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) })),
      );
    });
  });
  const { url, close } = await serveHttp(server, port, host);
  return {
    url,
    close,
  };
}

async function handle(sandbox: LocalSandbox, req: http.IncomingMessage, body: string): Promise<[number, unknown]> {
  const url = new URL(req.url ?? '/', 'http://sandbox');
  const q = url.searchParams;
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /endpoints':
      return [200, sandbox.endpoints];
    case 'GET /messages': {
      const filter: Parameters<SandboxHandle['messages']>[0] = { limit: Number(q.get('limit') ?? 100) };
      for (const key of ['channel', 'kind', 'to'] as const) {
        const v = q.get(key);
        if (v) filter[key] = v;
      }
      if (q.get('after_id')) filter.afterId = Number(q.get('after_id'));
      return [200, { messages: await sandbox.messages(filter) }];
    }
    case 'GET /counts':
      return [200, await sandbox.counts()];
    case 'POST /behaviors':
      return [201, await sandbox.addBehavior(JSON.parse(body) as BehaviorRule)];
    case 'DELETE /behaviors':
      await sandbox.clearBehaviors();
      return [204, null];
    case 'POST /trust': {
      const t = JSON.parse(body) as { kind: string; id: string; material: Record<string, string> };
      await sandbox.trust(t.kind, t.id, t.material);
      return [204, null];
    }
    default:
      return [404, { error: `no route ${route}` }];
  }
}

/** A SandboxHandle for a sandbox in another process, through its control API. */
export async function connectSandbox(controlUrl: string): Promise<SandboxHandle> {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${controlUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`sandbox ${method} ${path} answered ${res.status}`);
    const text = await res.text();
    return (text ? JSON.parse(text) : null) as T;
  };
  const endpoints = await call<Record<string, string>>('GET', '/endpoints');
  return {
    endpoints: Object.freeze(endpoints),
    async messages(filter) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k === 'afterId' ? 'after_id' : k, String(v));
      return (await call<{ messages: SandboxMessage[] }>('GET', `/messages?${q.toString()}`)).messages;
    },
    counts: () => call<Record<string, number>>('GET', '/counts'),
    addBehavior: (rule) => call<ActiveRule>('POST', '/behaviors', rule),
    clearBehaviors: () => call<void>('DELETE', '/behaviors'),
    trust: (kind, id, material) => call<void>('POST', '/trust', { kind, id, material }),
    close: () => Promise.resolve(),
  };
}
