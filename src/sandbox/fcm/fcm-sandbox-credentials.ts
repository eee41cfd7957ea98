import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { FcmCredentials } from '../../delivery/providers/fcm/fcm-credentials.ts';

const generateRsa = promisify(generateKeyPair);

/** What the helper needs of a sandbox: its endpoints and its trust registry. A SandboxHandle is one. */
export interface FcmSandboxTarget {
  readonly endpoints: Readonly<Record<string, string>>;
  trust(kind: string, id: string, material: Record<string, string>): Promise<void>;
}

export interface FcmSandboxCredentialOptions {
  /** The Firebase project id (default "herald-sandbox"). */
  projectId?: string;
}

/**
 * Makes a service account for the sandbox's FCM: a fresh RSA-2048 key, registered with the sandbox
 * (trust kind "fcm", id = client email, `{publicKey, projectId, privateKeyId}`), and credentials
 * that pass `fcmProvider.validate`: `token_uri` is the stand-in's own `/token` (the JWT audience
 * must name it) and `endpoint` is "sandbox". Takes the sandbox handle itself, which carries both
 * `endpoints` and `trust`.
 */
export async function fcmSandboxCredentials(sandbox: FcmSandboxTarget, options: FcmSandboxCredentialOptions = {}): Promise<FcmCredentials> {
  const base = sandbox.endpoints.fcm;
  if (!base) throw new Error('the sandbox has no fcm service running');
  const projectId = options.projectId ?? 'herald-sandbox';
  const { publicKey, privateKey } = await generateRsa('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const privateKeyId = randomBytes(20).toString('hex');
  const clientEmail = `herald-${randomBytes(4).toString('hex')}@${projectId}.iam.gserviceaccount.com`;
  await sandbox.trust('fcm', clientEmail, { publicKey, projectId, privateKeyId });
  return {
    service_account: {
      type: 'service_account',
      project_id: projectId,
      private_key_id: privateKeyId,
      private_key: privateKey,
      client_email: clientEmail,
      token_uri: `${base}/token`,
    },
    endpoint: 'sandbox',
  };
}
