import type { SmsCredentials } from '../../delivery/providers/sms/sms-credentials.ts';
import type { SandboxHandle } from '../sandbox.ts';

/**
 * The sandbox's SMS account. Fixed rather than random so that credentials saved for the demo
 * project keep working when the sandbox restarts; they open nothing but the local stand-in.
 */
export const SANDBOX_SMS_ACCOUNT: Readonly<{ accountSid: string; authToken: string; from: string }> =
  Object.freeze({
    accountSid: 'AC5a4db0c05a4db0c05a4db0c05a4db0c0',
    authToken: 'sandb0xsandb0xsandb0xsandb0x0000',
    /** Twilio's documented magic "From" number for test credentials. */
    from: '+15005550006',
  });

/**
 * Registers the sandbox account with the running stand-in and returns credentials for the `sms`
 * provider that reach it (`endpoint: "sandbox"`).
 */
export async function smsSandboxCredentials(
  sandbox: Pick<SandboxHandle, 'trust'>,
  options: { statusCallbackUrl?: string } = {},
): Promise<SmsCredentials> {
  await sandbox.trust('sms', SANDBOX_SMS_ACCOUNT.accountSid, { authToken: SANDBOX_SMS_ACCOUNT.authToken });
  const credentials: SmsCredentials = {
    account_sid: SANDBOX_SMS_ACCOUNT.accountSid,
    auth_token: SANDBOX_SMS_ACCOUNT.authToken,
    from: SANDBOX_SMS_ACCOUNT.from,
    endpoint: 'sandbox',
  };
  if (options.statusCallbackUrl !== undefined) credentials.status_callback_url = options.statusCallbackUrl;
  return credentials;
}
