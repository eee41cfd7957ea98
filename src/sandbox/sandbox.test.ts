import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { systemClock } from '../core/clock.ts';
import { silentLogger } from '../core/logger.ts';
import { startSandbox } from './sandbox.ts';
import { SANDBOX_SERVICES } from './registry.ts';

async function freeRange(length: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const probes: net.Server[] = [];
    try {
      for (let i = 0; i < length; i++) {
        const s = net.createServer();
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.listen(base + i, '127.0.0.1', resolve);
        });
        probes.push(s);
      }
      return base;
    } catch {
      // taken: try another range
    } finally {
      await Promise.all(probes.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error('no free port range');
}

describe('sandbox start', () => {
  it('a stand-in port someone else holds is an EADDRINUSE rejection (the caller falls back), not a crash, and nothing is left listening', async () => {
    const base = await freeRange(SANDBOX_SERVICES.length);
    const squatter = net.createServer();
    const taken = base + 1; // the second stand-in's port
    await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
    try {
      await assert.rejects(startSandbox({ clock: systemClock, logger: silentLogger, basePort: base }), { code: 'EADDRINUSE' });
      // The stand-in that did start was closed again: its port is free.
      const probe = net.createServer();
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(base, '127.0.0.1', resolve);
      });
      await new Promise((r) => probe.close(r));
      const fallback = await startSandbox({ clock: systemClock, logger: silentLogger, basePort: 0 });
      assert.equal(Object.keys(fallback.endpoints).length, SANDBOX_SERVICES.length);
      await fallback.close();
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});
