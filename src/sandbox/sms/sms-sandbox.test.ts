import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/logger.ts';
import { startSandbox, type LocalSandbox } from '../sandbox.ts';
import { SANDBOX_SMS_ACCOUNT, smsSandboxCredentials } from './sms-sandbox-credentials.ts';
import { smsSandbox } from './sms-sandbox.ts';

const { accountSid, authToken } = SANDBOX_SMS_ACCOUNT;
const OTHER_SID = `AC${'1'.repeat(32)}`;
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('sms sandbox: a Twilio-shaped Messages API', () => {
  let sandbox: LocalSandbox;
  const messagesUrl = (sid = accountSid) =>
    `${sandbox.endpoints.sms}/2010-04-01/Accounts/${sid}/Messages.json`;

  /** Posts a create-message form and returns the status, Retry-After and JSON answer. */
  const create = async (
    fields: Record<string, string>,
    init: { auth?: string; sid?: string; type?: string } = {},
  ) => {
    const res = await fetch(messagesUrl(init.sid), {
      method: 'POST',
      headers: {
        authorization: init.auth ?? basic(accountSid, authToken),
        'content-type': init.type ?? 'application/x-www-form-urlencoded',
      },
      body:
        init.type === 'application/json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
    });
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      auth: res.headers.get('www-authenticate'),
      json: (await res.json()) as Record<string, unknown>,
    };
  };
  const codeOf = async (fields: Record<string, string>, init?: Parameters<typeof create>[1]) => {
    const { status, json } = await create(fields, init);
    return [status, json.code];
  };

  before(async () => {
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [smsSandbox] });
    await smsSandboxCredentials(sandbox);
    await sandbox.trust('sms', OTHER_SID, { authToken: 'o'.repeat(32) });
  });
  after(() => sandbox.close());

  const ok = { To: '+14155550123', From: '+15005550006', Body: 'hello' };

  it('answers 401 with error 20003 unless Basic auth matches the account in the path', async () => {
    const denied = await create(ok, { auth: basic(accountSid, 'x'.repeat(32)) });
    assert.deepEqual([denied.status, denied.json.code, denied.json.status], [401, 20003, 401]);
    assert.equal(denied.json.more_info, 'https://www.twilio.com/docs/errors/20003');
    assert.match(denied.auth ?? '', /^Basic/);
    assert.deepEqual(await codeOf(ok, { auth: 'Bearer abc' }), [401, 20003]);
    assert.deepEqual(
      await codeOf(ok, { sid: OTHER_SID }),
      [401, 20003],
      "one account's token does not open another's",
    );
    assert.equal((await sandbox.messages({ kind: 'sms' })).length, 0, 'nothing was recorded');
  });

  it("validates the form with Twilio's error codes", async () => {
    assert.deepEqual(await codeOf({ From: ok.From, Body: 'x' }), [400, 21604]);
    assert.deepEqual(await codeOf({ ...ok, To: '4155550123' }), [400, 21211]);
    assert.deepEqual(await codeOf({ To: ok.To, Body: 'x' }), [400, 21603]);
    assert.deepEqual(await codeOf({ To: ok.To, From: ok.From }), [400, 21602]);
    assert.deepEqual(await codeOf({ ...ok, Body: 'a'.repeat(1601) }), [400, 21617]);
    assert.deepEqual(await codeOf({ ...ok, ValidityPeriod: '36001' }), [400, 21624]);
    assert.deepEqual(await codeOf({ ...ok, StatusCallback: 'not a url' }), [400, 21609]);
    assert.deepEqual(
      await codeOf(ok, { type: 'application/json' }),
      [400, 21604],
      'a JSON body carries no form fields',
    );
    assert.equal((await sandbox.messages({ kind: 'sms' })).length, 0, 'nothing was recorded');
    assert.deepEqual(await codeOf({ ...ok, Body: 'a'.repeat(1600) }), [201, undefined]);
  });

  it('creates a queued message resource that GET returns, for its own account only', async () => {
    const created = await create({ ...ok, Body: '€'.repeat(81) });
    assert.equal(created.status, 201);
    const sid = String(created.json.sid);
    assert.match(sid, /^SM[0-9a-f]{32}$/);
    assert.deepEqual(
      [created.json.status, created.json.num_segments, created.json.account_sid],
      ['queued', '2', accountSid],
    );
    const get = (sid2: string, auth = basic(accountSid, authToken), account = accountSid) =>
      fetch(`${sandbox.endpoints.sms}/2010-04-01/Accounts/${account}/Messages/${sid2}.json`, {
        headers: { authorization: auth },
      });
    const fetched = await get(sid);
    assert.equal(fetched.status, 200);
    assert.deepEqual(await fetched.json(), created.json);
    const missing = await get(`SM${'0'.repeat(32)}`);
    assert.deepEqual([missing.status, ((await missing.json()) as { code: number }).code], [404, 20404]);
    const foreign = await get(sid, basic(OTHER_SID, 'o'.repeat(32)), OTHER_SID);
    assert.equal(foreign.status, 404, "another account cannot read this account's message");
    const [recorded] = await sandbox.messages({ kind: 'sms', to: ok.To, limit: 1 });
    assert.deepEqual((recorded?.body as { segments: number; encoding: string }).segments, 2);
  });

  it('turns behaviour rules into Twilio errors: the rule reason is the code, 429 carries Retry-After', async () => {
    const to = '+14155550199';
    await sandbox.addBehavior({ kind: 'sms', to, reason: '21610', times: 1 });
    assert.deepEqual(await codeOf({ ...ok, To: to }), [400, 21610], 'a reason alone answers 400');
    await sandbox.addBehavior({ kind: 'sms', to, status: 429, retryAfterSeconds: 3, times: 1 });
    const limited = await create({ ...ok, To: to });
    assert.deepEqual([limited.status, limited.json.code, limited.retryAfter], [429, 20429, '3']);
    await sandbox.addBehavior({ kind: 'sms', to, status: 503, times: 1 });
    assert.deepEqual(await codeOf({ ...ok, To: to }), [503, 20503]);
    assert.deepEqual(
      await codeOf({ ...ok, To: '+14155550198' }),
      [201, undefined],
      'rules apply to their recipient only',
    );
    assert.deepEqual(await codeOf({ ...ok, To: to }), [201, undefined], 'the rules retired');
  });

  it('still accepts the message when its status callback cannot be delivered', async () => {
    const created = await create({
      ...ok,
      To: '+14155550197',
      StatusCallback: 'http://127.0.0.1:9/unreachable',
    });
    assert.equal(created.status, 201);
    const [recorded] = await sandbox.messages({ kind: 'sms', to: '+14155550197' });
    assert.equal(
      (recorded?.body as { status_callback: string }).status_callback,
      'http://127.0.0.1:9/unreachable',
    );
  });
});
