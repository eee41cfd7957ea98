/**
 * One catalogue of error codes. Each code has a stable name and a default sentence; the HTTP status
 * for each code is decided in one place, `api/error-status.ts`.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: 'The request is invalid; see details for each problem.',
  MALFORMED_JSON: 'The request body is not valid JSON.',
  UNSUPPORTED_MEDIA_TYPE: 'The request body must be JSON (Content-Type: application/json).',
  PAYLOAD_TOO_LARGE: 'The request body is larger than the 1 MiB limit.',
  BATCH_TOO_LARGE: 'A request may carry at most 1,000 items.',
  UNAUTHORIZED: 'A valid API key is required (Authorization: Bearer <key>).',
  FORBIDDEN: 'This key is not allowed to call this endpoint.',
  NOT_FOUND: 'No such resource.',
  PROFILE_NOT_FOUND: 'No profile has this custom_id.',
  IDEMPOTENCY_CONFLICT: 'This Idempotency-Key was already used with a different request.',
  RATE_LIMITED: 'Too many requests for this project; retry after the time given in Retry-After.',
  LOG_UNAVAILABLE: 'The ingest log is unavailable; nothing was accepted. Retry after the time given in Retry-After.',
  LOG_FULL: 'The ingest log is full; nothing was accepted. Retry after the time given in Retry-After.',
  APPEND_UNCONFIRMED:
    'The ingest log did not confirm this write in time; it may or may not have been accepted. Retry it with the same Idempotency-Key (or event ids) so that it takes effect once.',
  STORE_UNAVAILABLE: 'The store of this project is unavailable; retry after the time given in Retry-After.',
  SHUTTING_DOWN: 'Herald is shutting down; retry shortly.',
  INTERNAL: 'An internal error occurred.',
  // Control plane and CLI
  PROJECT_NOT_FOUND: 'No such project.',
  PROJECT_EXISTS: 'A project with this name already exists.',
  CELL_NOT_FOUND: 'No such cell.',
  KEY_NOT_FOUND: 'No such API key.',
  QUARANTINE_ITEM_NOT_FOUND: 'No such quarantined record.',
  INVALID_ARGUMENT: 'An argument is invalid.',
  // Delivery
  TEMPLATE_EXISTS: 'A template with this name already exists.',
  TEMPLATE_NOT_FOUND: 'No such template.',
  UNKNOWN_PROVIDER: 'No such provider kind.',
  PROVIDER_NOT_CONFIGURED: 'No provider is configured for this channel.',
  SEND_NOT_FOUND: 'No such send.',
  SANDBOX_NOT_RUNNING: 'The sandbox is not running in this Herald.',
  CONFIG_INVALID: 'The configuration is invalid.',
  // Targeting
  SEGMENT_EXISTS: 'A segment with this name already exists.',
  SEGMENT_NOT_FOUND: 'No such segment.',
  SEGMENT_IN_USE: 'Another segment refers to this one.',
  AUDIENCE_EXISTS: 'An audience with this name already exists.',
  AUDIENCE_NOT_FOUND: 'No such audience.',
  AUDIENCE_IN_USE: 'A saved segment refers to this audience.',
  TOO_MANY_MEMBERS: 'A call may carry at most 10,000 members.',
  IMPORT_NOT_FOUND: 'No such upload.',
  // Orchestration
  CAMPAIGN_NOT_FOUND: 'No such campaign.',
  CAMPAIGN_EXISTS: 'A campaign or automation with this name already exists.',
  CAMPAIGN_STATE: 'The campaign is not in a state that allows this action.',
  CAMPAIGN_CHANGED: 'The campaign changed while this request was handled; read it again and retry.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem in a request: for batches, the item index and the JSON pointer of the bad field. */
export interface ErrorDetail {
  index?: number;
  path: string;
  code: string;
  message: string;
}

export interface HeraldErrorOptions {
  message?: string;
  details?: ErrorDetail[];
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** An expected, user-facing failure. Anything else that is thrown is a bug or an outage. */
export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, options: HeraldErrorOptions = {}) {
    super(options.message ?? ERROR_CODES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HeraldError';
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isHeraldError(value: unknown): value is HeraldError {
  return value instanceof HeraldError;
}

/** Turns anything thrown into an Error, so handlers never deal with `unknown`. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}
