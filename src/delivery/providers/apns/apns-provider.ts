import type { DeliveryRequest, SendOutcome } from '../../delivery-model.ts';
import { recipientInvalid, retryable } from '../../delivery-model.ts';
import type { ProviderClient, ProviderContext, ProviderDefinition } from '../../provider.ts';
import { resolveEndpoint } from '../../provider.ts';
import { ApnsConnection, ApnsTransportError } from './apns-connection.ts';
import { APNS_ORIGINS, ApnsCredentialsSchema, validateApnsCredentials, type ApnsCredentials } from './apns-credentials.ts';
import { buildApnsNotification } from './apns-payload.ts';
import { outcomeOfAnswer } from './apns-response.ts';
import { ApnsTokenSigner } from './apns-token.ts';

export type { ApnsCredentials } from './apns-credentials.ts';

/** A device token is the hex form of the bytes the device registered; anything else is not one. */
const HEX_TOKEN = /^[0-9a-fA-F]+$/;

/** Tuning that tests (and only tests) change. */
/** APNs' usual SETTINGS_MAX_CONCURRENT_STREAMS once a connection is established. */
const STREAMS_PER_CONNECTION = 1000;

export interface ApnsClientOptions {
  /** HTTP/2 connections to spread requests over (Apple allows several per provider); 1 by default. */
  connections?: number;
  streamTimeoutMs?: number;
  pingTimeoutMs?: number;
  onSession?: () => void;
}

/** Where the client connects: an explicit endpoint (or the sandbox) wins over the environment. */
export function apnsOrigin(credentials: ApnsCredentials, context: ProviderContext): string {
  if (credentials.endpoint !== undefined) return resolveEndpoint(credentials.endpoint, 'apns', context);
  return APNS_ORIGINS[credentials.environment ?? 'production'];
}

/** A client of one APNs key and app: one HTTP/2 session, one cached provider token. */
export function createApnsClient(credentials: ApnsCredentials, context: ProviderContext, options: ApnsClientOptions = {}): ProviderClient {
  const logger = context.logger.child({ provider: 'apns' });
  const signer = new ApnsTokenSigner({ teamId: credentials.team_id, keyId: credentials.key_id, privateKeyPem: credentials.private_key }, context.clock);
  const connections = Array.from(
    { length: Math.max(1, options.connections ?? 1) },
    () =>
      new ApnsConnection(
        apnsOrigin(credentials, context),
        { streamTimeoutMs: options.streamTimeoutMs ?? 10_000, pingTimeoutMs: options.pingTimeoutMs ?? 5_000, onSession: options.onSession },
        logger,
      ),
  );
  const pending = connections.map(() => 0);
  /** The connection with the fewest requests under way. */
  const leastBusy = (): number => {
    let best = 0;
    for (let i = 1; i < pending.length; i++) if (pending[i]! < pending[best]!) best = i;
    return best;
  };
  return {
    async send(request: DeliveryRequest, signal: AbortSignal): Promise<SendOutcome> {
      // Checked here so a malformed token can never reach the request path.
      if (!HEX_TOKEN.test(request.to)) {
        return recipientInvalid('BadDeviceToken', 'the device token is not a hexadecimal APNs token', 'disable-token');
      }
      const built = buildApnsNotification(request, credentials.topic);
      if (!built.ok) return built.outcome;
      const jwt = await signer.token();
      const which = leastBusy();
      pending[which]!++;
      try {
        const answer = await connections[which]!.request(
          {
            ':method': 'POST',
            ':path': `/3/device/${request.to}`,
            authorization: `bearer ${jwt}`,
            ...built.notification.headers,
          },
          built.notification.payload,
          signal,
        );
        const outcome = outcomeOfAnswer(answer, { nowMs: context.clock.now(), tokenRejected: () => signer.rejected(jwt) });
        if (outcome.kind === 'sent') signer.accepted(jwt);
        return outcome;
      } catch (error) {
        if (error instanceof ApnsTransportError) return retryable(error.code, `no answer from APNs: ${error.message}`);
        throw error;
      } finally {
        pending[which]!--;
      }
    },
    close: async () => {
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}

/**
 * Apple Push Notification service, token-based: HTTP/2 to /3/device/<token>, an ES256 provider
 * token (key id, team id, .p8 key) re-signed every 50 minutes, apns-id = the message id so a
 * retried notification is recognisable. 410 Unregistered and 400 BadDeviceToken disable the
 * token; 429 and 5xx are retried; other 4xx fail the message with Apple's reason.
 */
export const apnsProvider: ProviderDefinition<ApnsCredentials> = {
  kind: 'apns',
  label: 'Apple Push Notification service (APNs)',
  channel: 'push',
  platforms: ['ios'],
  credentialsSchema: ApnsCredentialsSchema,
  // Apple publishes no per-second quota; a connection multiplexes up to 1,000 streams. A project
  // that raises max_concurrency gets one more connection per 1,000 (Apple allows several). More in
  // flight also means more to resend after a crash (ADR 0006), and measured no faster here.
  limits: { ratePerSecond: 20_000, maxConcurrency: 1000 },
  validate: validateApnsCredentials,
  create: (credentials, context, limits) =>
    createApnsClient(credentials, context, { connections: Math.ceil((limits ?? apnsProvider.limits).maxConcurrency / STREAMS_PER_CONNECTION) }),
};
