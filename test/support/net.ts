import net from 'node:net';

/** A free TCP port on 127.0.0.1 right now: listen on port 0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The most specific code of a failed request: `ECONNREFUSED`, `UND_ERR_SOCKET`, `TimeoutError`, … */
export function errorCode(error: unknown): string {
  const e = error as { name?: string; code?: string; cause?: { code?: string; name?: string } } | null;
  return e?.cause?.code ?? e?.code ?? e?.cause?.name ?? e?.name ?? String(error);
}
