import { generateKeyPairSync, randomInt } from 'node:crypto';
import type { ApnsCredentials } from '../../delivery/providers/apns/apns-credentials.ts';

/** The bundle id sandbox credentials push to. */
export const SANDBOX_APNS_TOPIC = 'dev.herald.sandbox';

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A Team ID or Key ID in Apple's form: 10 upper-case letters and digits. */
function appleId(): string {
  let id = '';
  for (let i = 0; i < 10; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

/**
 * Wires a project's APNs provider to the sandbox: a fresh P-256 signing key (as Apple's .p8 file
 * would hold it), a key id and team id, with the public half registered so the stand-in accepts
 * the tokens it signs, for the sandbox topic only.
 */
export async function apnsSandboxCredentials(sandbox: {
  trust(kind: string, id: string, material: Record<string, string>): Promise<void>;
}): Promise<ApnsCredentials> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyId = appleId();
  const teamId = appleId();
  await sandbox.trust('apns', keyId, {
    teamId,
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    topic: SANDBOX_APNS_TOPIC,
  });
  return {
    team_id: teamId,
    key_id: keyId,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    topic: SANDBOX_APNS_TOPIC,
    environment: 'development',
    endpoint: 'sandbox',
  };
}
