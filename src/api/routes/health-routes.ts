import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { ApiDeps } from '../api-deps.ts';

const CellReadiness = Type.Object({
  id: Type.String(),
  ready: Type.Boolean(),
  log: Type.Object({ ok: Type.Boolean(), head_seq: Type.Integer(), error: Type.Union([Type.String(), Type.Null()]) }),
  store: Type.Object({
    ok: Type.Boolean(),
    state: Type.String(),
    applied_seq: Type.Integer(),
    error: Type.Union([Type.String(), Type.Null()]),
  }),
  lag: Type.Integer({ description: 'Log records accepted but not yet applied to the store.' }),
});

export function registerHealthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/v1/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process answers',
        response: { 200: Type.Object({ status: Type.Literal('ok'), version: Type.String() }) },
      },
    },
    () => ({ status: 'ok' as const, version: deps.version }),
  );

  app.get(
    '/v1/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness per cell: log and store reachable, and the lag between them',
        description: '200 when every cell can take writes and apply them; 503 otherwise, with the failing parts named.',
        response: {
          200: Type.Object({ status: Type.String(), cells: Type.Array(CellReadiness) }),
          503: Type.Object({ status: Type.String(), cells: Type.Array(CellReadiness) }),
        },
      },
    },
    (_request, reply) => {
      const cells = deps.cells.all().map((runtime) => {
        const s = runtime.status();
        return {
          id: s.cellId,
          ready: s.log.ok && s.store.ok,
          log: { ok: s.log.ok, head_seq: s.log.headSeq, error: s.log.lastError },
          store: { ok: s.store.ok, state: s.store.state, applied_seq: s.store.appliedSeq, error: s.store.lastError },
          lag: s.lag,
        };
      });
      const ready = cells.length > 0 && cells.every((c) => c.ready);
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', cells });
    },
  );
}
