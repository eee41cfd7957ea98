import type { SmtpCredentials } from '../../delivery/providers/smtp/smtp-credentials.ts';
import type { SandboxHandle } from '../sandbox.ts';

/** The sandbox sender. `.invalid` (RFC 2606) can never be a real domain, so nothing leaks if misrouted. */
export const SANDBOX_SMTP_FROM = Object.freeze({ email: 'demo@sandbox.herald.invalid', name: 'Herald Demo' });

/**
 * Credentials for the `smtp` provider that reach the sandbox's SMTP server (`endpoint: "sandbox"`).
 * With `user`, the user is registered with the stand-in, which then requires AUTH from every
 * client; without, the stand-in takes mail from anyone, as a local relay would.
 */
export async function smtpSandboxCredentials(
  sandbox: Pick<SandboxHandle, 'trust'>,
  options: { user?: { username: string; password: string } } = {},
): Promise<SmtpCredentials> {
  const credentials: SmtpCredentials = { endpoint: 'sandbox', from: { ...SANDBOX_SMTP_FROM } };
  if (options.user) {
    await sandbox.trust('smtp', options.user.username, { password: options.user.password });
    credentials.username = options.user.username;
    credentials.password = options.user.password;
  }
  return credentials;
}
