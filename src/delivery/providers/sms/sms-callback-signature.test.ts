import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { twilioSignature, verifyTwilioSignature } from './sms-callback-signature.ts';

describe('Twilio request signature (X-Twilio-Signature)', () => {
  // The worked example of Twilio's security documentation.
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  const params = new URLSearchParams({
    CallSid: 'CA1234567890ABCDE',
    Caller: '+12349013030',
    Digits: '1234',
    From: '+12349013030',
    To: '+18005551212',
  });

  it('matches the documented example', () => {
    assert.equal(twilioSignature('12345', url, params), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
  });

  it('does not depend on parameter order, and rejects any change to token, URL or parameters', () => {
    const shuffled = new URLSearchParams([...params].reverse());
    assert.ok(verifyTwilioSignature('12345', url, shuffled, '0/KCTR6DLpKmkAf8muzZqo1nDgQ='));
    assert.ok(!verifyTwilioSignature('12346', url, params, '0/KCTR6DLpKmkAf8muzZqo1nDgQ='));
    assert.ok(
      !verifyTwilioSignature('12345', url.replace('foo=1', 'foo=2'), params, '0/KCTR6DLpKmkAf8muzZqo1nDgQ='),
    );
    const changed = new URLSearchParams(params);
    changed.set('Digits', '1235');
    assert.ok(!verifyTwilioSignature('12345', url, changed, '0/KCTR6DLpKmkAf8muzZqo1nDgQ='));
    assert.ok(!verifyTwilioSignature('12345', url, params, ''));
  });
});
