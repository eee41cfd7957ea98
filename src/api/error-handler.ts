import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../core/errors.ts';
import { HeraldError, isHeraldError } from '../core/errors.ts';
import { HTTP_STATUS } from './error-status.ts';

/** Sends Herald's error body: `{error: {code, message, details?, request_id}}`. */
export function sendError(reply: FastifyReply, request: FastifyRequest, error: HeraldError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  return reply.code(HTTP_STATUS[error.code]).send({
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
      request_id: request.id,
    },
  });
}

/** Fastify's own errors (body parsing, limits) in Herald's catalogue. */
function fromFastify(error: FastifyError): HeraldError | undefined {
  const map: Record<string, ErrorCode> = {
    FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
    FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
    FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
    FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_JSON',
  };
  const code = map[error.code];
  if (code) return new HeraldError(code);
  if (error instanceof SyntaxError) return new HeraldError('MALFORMED_JSON');
  return undefined;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isHeraldError(error)) {
      if (HTTP_STATUS[error.code] >= 500) {
        request.log.warn({ code: error.code, cause: error.cause instanceof Error ? error.cause.message : undefined }, error.message);
      }
      return sendError(reply, request, error);
    }
    const known = fromFastify(error);
    if (known) return sendError(reply, request, known);
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, request, new HeraldError('VALIDATION_FAILED', { message: error.message }));
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendError(reply, request, new HeraldError('INTERNAL'));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, request, new HeraldError('NOT_FOUND', { message: `No route ${request.method} ${request.url.split('?')[0]}.` })),
  );
}
