import type { TSchema } from 'typebox';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { Platform } from '../profiles/profile-model.ts';
import type { Channel, DeliveryRequest, SendOutcome } from './delivery-model.ts';

/** A problem with a provider's credentials, at a JSON pointer inside them. */
export interface CredentialProblem {
  path: string;
  code: string;
  message: string;
}

/** Where the sandbox's stand-in for each provider listens (base URLs, or host:port for SMTP). */
export type SandboxEndpoints = Readonly<Record<string, string>>;

/** What a provider client may use. Passed in, never imported: tests and the sandbox swap them. */
export interface ProviderContext {
  clock: Clock;
  logger: Logger;
  /** Endpoints of the running sandbox; a credential `endpoint` of "sandbox" resolves through this. */
  sandbox: SandboxEndpoints;
  /** Webhooks may target private and loopback addresses (the sandbox; a project that allows it). */
  allowPrivateTargets: boolean;
}

/** A live client of one configured provider: connections, cached tokens. */
export interface ProviderClient {
  /** Delivers one message. Never throws for a remote answer: see SendOutcome. */
  send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome>;
  close(): Promise<void>;
}

/** Documented quotas, used as defaults for flow control. */
export interface ProviderLimits {
  /** Sustained messages per second per project. */
  ratePerSecond: number;
  /** Requests in flight at once, the adaptive limit's ceiling. */
  maxConcurrency: number;
}

/**
 * A provider kind: one folder under `src/delivery/providers/`, one line in `registry.ts`. The API
 * (credentials schema and validation), the CLI and the dispatcher all go through this.
 */
export interface ProviderDefinition<C = unknown> {
  /** Stable id: "apns", "fcm", "webpush", "smtp", "sms", "webhook". */
  readonly kind: string;
  readonly label: string;
  readonly channel: Channel;
  /** Push providers serve these platforms. */
  readonly platforms?: readonly Platform[];
  /** The credentials' JSON schema (TypeBox): documented in OpenAPI, checked before `validate`. */
  readonly credentialsSchema: TSchema;
  readonly limits: ProviderLimits;
  /**
   * Checks credentials beyond their shape (a key that parses, a URL that is https) and returns
   * them normalised, or the problems. Called when a provider is saved; nothing is stored on error.
   */
  validate(credentials: unknown): { ok: true; credentials: C } | { ok: false; problems: CredentialProblem[] };
  /** A live client; `limits` are the effective ones (defaults with the project's overrides; the defaults if omitted). */
  create(credentials: C, context: ProviderContext, limits?: ProviderLimits): ProviderClient;
}

/** Resolves a credential endpoint: "sandbox" means the running sandbox's stand-in for `kind`. */
export function resolveEndpoint(endpoint: string, kind: string, context: ProviderContext): string {
  if (endpoint !== 'sandbox') return endpoint;
  const url = context.sandbox[kind];
  if (!url) throw new Error(`the sandbox for ${kind} is not running in this process`);
  return url;
}
