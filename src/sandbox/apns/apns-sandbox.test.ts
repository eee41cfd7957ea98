import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/logger.ts';
import { startSandbox, type LocalSandbox } from '../sandbox.ts';
import { apnsSandbox } from './apns-sandbox.ts';
import { apnsSandboxCredentials, SANDBOX_APNS_TOPIC } from './apns-sandbox-credentials.ts';

const b64url = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A provider token made by hand, so each of Herald's possible mistakes can be made on purpose. */
function jwt(key: KeyObject, claims: { kid: string; iss: string; iat: number }, encoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  const signed = `${b64url({ alg: 'ES256', kid: claims.kid })}.${b64url({ iss: claims.iss, iat: claims.iat })}`;
  const signature = sign('sha256', Buffer.from(signed), { key, dsaEncoding: encoding });
  return `${signed}.${signature.toString('base64url')}`;
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Record<string, unknown> | null;
}

describe('APNs sandbox stand-in refuses what APNs refuses', () => {
  let sandbox: LocalSandbox;
  let session: http2.ClientHttp2Session;
  let key: KeyObject;
  let keyId: string;
  let teamId: string;
  const nowS = () => Math.floor(Date.now() / 1000);
  const token = (): string => jwt(key, { kid: keyId, iss: teamId, iat: nowS() });

  const post = (
    path: string,
    overrides: Record<string, string | undefined> = {},
    payload: string = JSON.stringify({ aps: { alert: { title: 'Hi' } } }),
    method = 'POST',
  ): Promise<Answer> => {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': method,
      ':path': path,
      authorization: `bearer ${token()}`,
      'apns-topic': SANDBOX_APNS_TOPIC,
      'apns-push-type': 'alert',
      'apns-priority': '10',
      ...overrides,
    };
    for (const [name, value] of Object.entries(headers)) if (value === undefined) delete headers[name];
    return new Promise((resolve, reject) => {
      const stream = session.request(headers);
      const chunks: Buffer[] = [];
      let answer: http2.IncomingHttpHeaders = {};
      stream.on('response', (h) => (answer = h));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: Number(answer[':status']), headers: answer, body: text ? (JSON.parse(text) as Record<string, unknown>) : null });
      });
      stream.on('error', reject);
      // Node ends GET requests itself (no body).
      if (!stream.writableEnded) stream.end(payload);
    });
  };
  const device = () => `/3/device/${randomBytes(32).toString('hex')}`;

  before(async () => {
    sandbox = await startSandbox({ clock: systemClock, logger: silentLogger, services: [apnsSandbox] });
    const credentials = await apnsSandboxCredentials(sandbox);
    key = createPrivateKey(credentials.private_key);
    keyId = credentials.key_id;
    teamId = credentials.team_id;
    session = http2.connect(sandbox.endpoints.apns!);
  });
  after(async () => {
    session.close();
    await sandbox.close();
  });

  it('accepts a correct request: 200, the apns-id echoed, an apns-unique-id, the notification recorded', async () => {
    const id = randomUUID();
    const path = device();
    const answer = await post(path, { 'apns-id': id });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['apns-id'], id);
    assert.match(String(answer.headers['apns-unique-id']), /^[0-9a-f-]{36}$/);
    const [recorded] = await sandbox.messages({ kind: 'apns', to: path.slice('/3/device/'.length) });
    assert.equal(recorded?.headers['apns-id'], id);
    assert.match(recorded?.headers.authorization ?? '', /^bearer [^.]+\.[^.]+\.<signature>$/, 'the recorded token cannot be replayed');
    const generated = await post(device());
    assert.match(String(generated.headers['apns-id']), /^[0-9a-f-]{36}$/, 'without apns-id, APNs makes one up');
  });

  it('checks the provider token: present, ES256 over R||S, a trusted key, its team, less than an hour old', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const cases: [string, string | undefined, string][] = [
      ['no token', undefined, 'MissingProviderToken'],
      ['another key under the same key id', `bearer ${jwt(other, { kid: keyId, iss: teamId, iat: nowS() })}`, 'InvalidProviderToken'],
      ['a DER signature instead of R||S', `bearer ${jwt(key, { kid: keyId, iss: teamId, iat: nowS() }, 'der')}`, 'InvalidProviderToken'],
      ['an unknown key id', `bearer ${jwt(key, { kid: 'ZZZZZZZZZZ', iss: teamId, iat: nowS() })}`, 'InvalidProviderToken'],
      ['another team', `bearer ${jwt(key, { kid: keyId, iss: 'ZZZZZZZZZZ', iat: nowS() })}`, 'InvalidProviderToken'],
      ['issued 61 minutes ago', `bearer ${jwt(key, { kid: keyId, iss: teamId, iat: nowS() - 61 * 60 })}`, 'ExpiredProviderToken'],
    ];
    for (const [what, authorization, reason] of cases) {
      const answer = await post(device(), { authorization });
      assert.deepEqual([answer.status, answer.body?.reason], [403, reason], what);
    }
  });

  it('checks headers, device token and payload', async () => {
    const cases: [string, Promise<Answer>, number, string][] = [
      ['GET', post(device(), {}, undefined, 'GET'), 405, 'MethodNotAllowed'],
      ['no topic', post(device(), { 'apns-topic': undefined }), 400, 'MissingTopic'],
      ['a topic of another app', post(device(), { 'apns-topic': 'com.example.other' }), 400, 'TopicDisallowed'],
      ['no push type', post(device(), { 'apns-push-type': undefined }), 400, 'InvalidPushType'],
      ['apns-id not a UUID', post(device(), { 'apns-id': 'message-1' }), 400, 'BadMessageId'],
      ['priority 7', post(device(), { 'apns-priority': '7' }), 400, 'BadPriority'],
      ['background at priority 10', post(device(), { 'apns-push-type': 'background' }, JSON.stringify({ aps: { 'content-available': 1 } })), 400, 'BadPriority'],
      ['a background push with an alert', post(device(), { 'apns-push-type': 'background', 'apns-priority': '5' }), 400, 'InvalidPushType'],
      ['expiration not a number', post(device(), { 'apns-expiration': 'tomorrow' }), 400, 'BadExpirationDate'],
      ['a 65-byte collapse id', post(device(), { 'apns-collapse-id': 'c'.repeat(65) }), 400, 'BadCollapseId'],
      ['a token that is not hex', post('/3/device/not-a-token'), 400, 'BadDeviceToken'],
      ['no payload', post(device(), {}, ''), 400, 'PayloadEmpty'],
      ['a payload that is not JSON', post(device(), {}, '{aps:'), 400, 'BadPayload'],
      ['a payload without aps', post(device(), {}, '{"alert":"hi"}'), 400, 'BadPayload'],
      ['a payload over 4 KB', post(device(), {}, JSON.stringify({ aps: { alert: { body: 'x'.repeat(4100) } } })), 413, 'PayloadTooLarge'],
    ];
    const before = (await sandbox.counts()).apns ?? 0;
    for (const [what, pending, status, reason] of cases) {
      const answer = await pending;
      assert.deepEqual([answer.status, answer.body?.reason], [status, reason], what);
    }
    assert.equal((await sandbox.counts()).apns ?? 0, before, 'nothing refused was recorded');
  });

  it('turns misbehaviour rules into APNs error answers: 410 with a timestamp, 429 with Retry-After', async () => {
    const gone = device();
    await sandbox.addBehavior({ kind: 'apns', to: gone.slice('/3/device/'.length), status: 410, times: 1 });
    const unregistered = await post(gone);
    assert.equal(unregistered.status, 410);
    assert.equal(unregistered.body?.reason, 'Unregistered');
    assert.equal(typeof unregistered.body?.timestamp, 'number');
    const busy = device();
    await sandbox.addBehavior({ kind: 'apns', to: busy.slice('/3/device/'.length), status: 429, retryAfterSeconds: 3, times: 1 });
    const limited = await post(busy);
    assert.deepEqual([limited.status, limited.body?.reason, limited.headers['retry-after']], [429, 'TooManyRequests', '3']);
  });
});
