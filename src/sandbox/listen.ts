import type http from 'node:http';
import type net from 'node:net';

/**
 * `server.listen` as a promise that also fails: a port taken by someone else (EADDRINUSE) rejects,
 * so the caller can fall back to free ports, instead of surfacing later as an unhandled 'error'
 * event that would bring the whole process down.
 */
export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => reject(error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/** An HTTP server listening on `port` (0: any), its URL, and a close that drops open connections. */
export async function serveHttp(server: http.Server, port: number, host: string): Promise<{ url: string; close: () => Promise<void> }> {
  await listen(server, port, host);
  return {
    url: `http://${host}:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
