import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../src/core/clock.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Bad input gets a clear answer (I9): every rule of issue 2 part 8, each checked for its status,
 * its error code, the index and path of every bad item, and — the part a user cares about most —
 * that NOTHING of a rejected request was accepted. "Nothing accepted" is proven by writing a
 * known-good marker afterwards and reading it with ?wait_for: the log is ordered per cell, so once
 * the marker is applied, anything the rejected request might have appended is applied too, and its
 * profiles must still be 404. Tenants stay apart (I10).
 */

type Res = { status: number; body: any; headers: Headers };
interface Expected {
  index?: number;
  path: string;
  code: string;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MiB = 1024 * 1024;

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const basic = (key: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}`,
});

/** A raw request: no key or content type unless given. */
async function send(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Uint8Array | ReadableStream<Uint8Array>;
  },
): Promise<Res> {
  const request: RequestInit & { duplex?: 'half' } = {
    method: init.method ?? 'POST',
    headers: init.headers ?? {},
    body: init.body,
    signal: AbortSignal.timeout(30_000),
  };
  if (init.body instanceof ReadableStream) request.duplex = 'half'; // a streamed (chunked) body
  const res = await fetch(url, request);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body, headers: res.headers };
}

/** Herald's error shape: `{error: {code, message, details?, request_id}}`, with the status of its code. */
function assertError(res: Res, status: number, code: string, context = ''): void {
  const seen = `${context ? `${context}: ` : ''}got ${res.status} ${JSON.stringify(res.body).slice(0, 800)}`;
  assert.equal(res.status, status, `expected ${status} ${code}; ${seen}`);
  assert.ok(
    res.body && typeof res.body === 'object' && res.body.error && typeof res.body.error === 'object',
    `no error object; ${seen}`,
  );
  const error = res.body.error;
  assert.equal(error.code, code, seen);
  assert.equal(typeof error.message, 'string', seen);
  assert.ok(error.message.length > 0, seen);
  assert.equal(typeof error.request_id, 'string', seen);
  assert.equal(res.headers.get('x-request-id'), error.request_id, seen);
  if (error.details !== undefined) {
    assert.ok(Array.isArray(error.details), seen);
    for (const d of error.details) {
      assert.equal(typeof d.path, 'string', seen);
      assert.equal(typeof d.code, 'string', seen);
      assert.ok(typeof d.message === 'string' && d.message.length > 0, seen);
      assert.ok(d.index === undefined || Number.isInteger(d.index), seen);
    }
  }
}

/** 400 VALIDATION_FAILED listing exactly these problems (index, JSON pointer, code), in any order. */
function assertValidation(res: Res, expected: Expected[], context = ''): void {
  assertError(res, 400, 'VALIDATION_FAILED', context);
  const key = (d: Expected): string => `${d.index ?? '-'} ${d.path} ${d.code}`;
  const got = (res.body.error.details as Expected[]).map(key).sort();
  assert.deepEqual(got, expected.map(key).sort(), context);
}

function assertRetryAfter(res: Res): void {
  const value = res.headers.get('retry-after');
  assert.match(
    value ?? '',
    /^[1-9]\d*$/,
    `Retry-After must be a positive number of seconds, got ${String(value)}`,
  );
}

/**
 * Waits until the demo cell takes writes and applies them, so that no test here depends on how
 * long a cell takes to start (its threads boot and its databases are created in the background).
 */
async function warmUp(h: TestApp): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    const w = await h.api('POST', '/v1/profiles/update', [{ identifiers: { custom_id: 'warm-up' } }]);
    if (w.status === 202) {
      const r = await h.api('GET', `/v1/profiles/warm-up?wait_for=${w.body.ingest_id}`);
      if (r.status === 200 && r.body.consistency.applied) return;
      last = JSON.stringify(r.body);
    } else {
      last = JSON.stringify(w.body);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the demo cell did not start within 60 s: ${last}`);
}

const item = (customId: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  identifiers: { custom_id: customId },
  ...extra,
});

const validWebPush = () => ({
  endpoint: 'https://push.example.com/send/abc',
  keys: {
    p256dh: Buffer.alloc(65, 4).toString('base64url'),
    auth: Buffer.alloc(16, 1).toString('base64url'),
  },
});

for (const { backend, skip } of [
  { backend: 'sqlite' as Backend, skip: false as string | false },
  { backend: 'postgres' as Backend, skip: skipWithoutPg },
]) {
  describe(`bad input gets a clear answer and changes nothing (I9, ${backend})`, { skip }, () => {
    let h: TestApp;
    before(async () => {
      h = await startTestApp(backend);
      await warmUp(h);
    });
    after(async () => {
      await h?.stop();
    });

    const update = (body: unknown, headers?: Record<string, string>) =>
      h.api('POST', '/v1/profiles/update', body, headers);

    /** Writes and waits until applied; returns the profile as read back. */
    async function writeAndRead(items: unknown[], customId: string, key = h.secretKey): Promise<any> {
      const w = await update(items, bearer(key));
      assert.equal(w.status, 202, JSON.stringify(w.body).slice(0, 500));
      const r = await h.api(
        'GET',
        `/v1/profiles/${encodeURIComponent(customId)}?wait_for=${w.body.ingest_id}`,
        undefined,
        bearer(key),
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.consistency.applied, true);
      return r.body;
    }

    /**
     * Proves that none of `customIds` exists: a marker written afterwards (same key, so the same
     * project and cell log) is applied, hence anything appended before it is applied too.
     */
    async function assertNothingAccepted(customIds: string[], key = h.secretKey): Promise<void> {
      const marker = `marker-${randomUUID()}`;
      await writeAndRead([item(marker)], marker, key);
      for (const id of customIds) {
        const r = await h.api('GET', `/v1/profiles/${encodeURIComponent(id)}`, undefined, bearer(key));
        assert.equal(
          r.status,
          404,
          `profile ${id} of a rejected request exists: ${JSON.stringify(r.body).slice(0, 300)}`,
        );
        assert.equal(r.body.error.code, 'PROFILE_NOT_FOUND');
      }
    }

    /** The head of a cell's log, from the public readiness report. */
    async function logHead(cellId = 'c1'): Promise<number> {
      const r = await h.api('GET', '/v1/ready');
      const cell = r.body.cells.find((c: { id: string }) => c.id === cellId);
      assert.ok(cell, `cell ${cellId} missing from /v1/ready`);
      return cell.log.head_seq as number;
    }

    it('refuses a body over 1 MiB with 413 PAYLOAD_TOO_LARGE, with or without Content-Length, and accepts one just under', async () => {
      const big: unknown[] = [];
      for (let i = 0, length = 2; length <= MiB; i++) {
        const next = item(`big-${i}`, { attributes: { s: 'x'.repeat(2000) } });
        big.push(next);
        length += JSON.stringify(next).length + 1;
      }
      const text = JSON.stringify(big);
      assert.ok(Buffer.byteLength(text) > MiB);
      const sized = await update(text);
      assertError(sized, 413, 'PAYLOAD_TOO_LARGE', 'with Content-Length');

      const bytes = Buffer.from(text);
      const chunked = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 64 * 1024)
            controller.enqueue(bytes.subarray(at, at + 64 * 1024));
          controller.close();
        },
      });
      const streamed = await send(`${h.url}/v1/profiles/update`, {
        headers: { ...bearer(h.secretKey), 'content-type': 'application/json' },
        body: chunked,
      });
      assertError(streamed, 413, 'PAYLOAD_TOO_LARGE', 'chunked, no Content-Length');

      // Just under the limit, the same kind of items are fine: the limit is about size, not content.
      const fits = big.slice(0, big.length - 60);
      assert.ok(Buffer.byteLength(JSON.stringify(fits)) < MiB);
      const ok = await update(fits);
      assert.equal(ok.status, 202, JSON.stringify(ok.body).slice(0, 300));
      assert.equal(ok.body.accepted, fits.length);

      await assertNothingAccepted([`big-${big.length - 1}`, `big-${big.length - 30}`]);
    });

    it('refuses more than 1,000 items with 400 BATCH_TOO_LARGE and takes exactly 1,000', async () => {
      const tooMany = Array.from({ length: 1001 }, (_, i) => item(`batch-over-${i}`));
      assertError(await update(tooMany), 400, 'BATCH_TOO_LARGE');
      const thousand = Array.from({ length: 1000 }, (_, i) => item(`batch-max-${i}`));
      const ok = await update(thousand);
      assert.equal(ok.status, 202);
      assert.equal(ok.body.accepted, 1000);
      await assertNothingAccepted(['batch-over-0', 'batch-over-500', 'batch-over-1000']);
    });

    it('refuses malformed JSON with 400 MALFORMED_JSON', async () => {
      const good = JSON.stringify([item('malformed-1', { attributes: { plan: 'pro' } })]);
      const bodies = [
        good.slice(0, -1), // truncated
        good.slice(0, 20),
        `${good} trailing`,
        good.replace(/"/g, "'"),
        '[{"identifiers": {"custom_id": "malformed-1",}}]', // trailing comma
        '[{identifiers: {custom_id: "malformed-1"}}]', // unquoted names
        'undefined',
        '[NaN]',
        '',
      ];
      for (const body of bodies) {
        assertError(
          await update(body, { 'content-type': 'application/json' }),
          400,
          'MALFORMED_JSON',
          JSON.stringify(body.slice(0, 60)),
        );
      }
      await assertNothingAccepted(['malformed-1']);
    });

    it('refuses non-JSON content types with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const body = JSON.stringify([item('ctype-1')]);
      for (const type of [
        'application/x-www-form-urlencoded',
        'application/xml',
        'application/octet-stream',
        'multipart/form-data; boundary=x',
      ]) {
        assertError(await update(body, { 'content-type': type }), 415, 'UNSUPPORTED_MEDIA_TYPE', type);
      }
      // No Content-Type at all (a Blob body carries none).
      const bare = await send(`${h.url}/v1/profiles/update`, {
        headers: bearer(h.secretKey),
        body: new Uint8Array(Buffer.from(body)),
      });
      assertError(bare, 415, 'UNSUPPORTED_MEDIA_TYPE', 'no content type');
      const install = await h.api(
        'POST',
        '/v1/installations',
        JSON.stringify({ install_id: 'ct-i', platform: 'android', custom_id: 'ctype-2' }),
        {
          'content-type': 'application/xml',
        },
      );
      assertError(install, 415, 'UNSUPPORTED_MEDIA_TYPE', 'installations');
      await assertNothingAccepted(['ctype-1', 'ctype-2']);
    });

    it('refuses a JSON body sent as text/plain with 415, it does not parse it as a string', async () => {
      const body = JSON.stringify([item('ctype-text-1')]);
      assertError(
        await update(body, { 'content-type': 'text/plain' }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        'profiles, text/plain',
      );
      const install = await h.api(
        'POST',
        '/v1/installations',
        JSON.stringify({ install_id: 'ct-t', platform: 'android', custom_id: 'ctype-text-2' }),
        {
          'content-type': 'text/plain; charset=utf-8',
        },
      );
      assertError(install, 415, 'UNSUPPORTED_MEDIA_TYPE', 'installations, text/plain');
      await assertNothingAccepted(['ctype-text-1', 'ctype-text-2']);
    });

    it('reports every invalid item with its index and path, and accepts none of the valid ones beside them', async () => {
      const res = await update([
        item('many-ok-0', { attributes: { plan: 'pro' } }),
        item('many-bad-1', { attributes: { Plan: 'pro' } }),
        item('many-ok-2', { events: [{ name: 'opened' }] }),
        item('many-bad-3', {
          attributes: { $email_address: 'not-an-email', tags: ['a', 7] },
          events: [{ name: 'x', time: 'soon' }],
        }),
        { identifiers: {}, color: 'red' },
        item('many-ok-5'),
      ]);
      assertValidation(res, [
        { index: 1, path: '/attributes/Plan', code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 3, path: '/attributes/$email_address', code: 'INVALID_EMAIL' },
        { index: 3, path: '/attributes/tags/1', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 3, path: '/events/0/time', code: 'INVALID_TIME' },
        { index: 4, path: '/identifiers/custom_id', code: 'REQUIRED' },
        { index: 4, path: '/color', code: 'UNKNOWN_FIELD' },
      ]);
      await assertNothingAccepted(['many-ok-0', 'many-bad-1', 'many-ok-2', 'many-bad-3', 'many-ok-5']);
    });

    it('refuses the whole body when it is not an array of items', async () => {
      assertValidation(await update({ identifiers: { custom_id: 'shape-1' } }), [
        { path: '', code: 'INVALID_TYPE' },
      ]);
      assertValidation(await update('null', { 'content-type': 'application/json' }), [
        { path: '', code: 'INVALID_TYPE' },
      ]);
      assertValidation(await update([]), [{ path: '', code: 'TOO_FEW_ITEMS' }]);
      assertValidation(await update([item('shape-2'), null, 'x', 5, []]), [
        { index: 1, path: '', code: 'INVALID_TYPE' },
        { index: 2, path: '', code: 'INVALID_TYPE' },
        { index: 3, path: '', code: 'INVALID_TYPE' },
        { index: 4, path: '', code: 'INVALID_TYPE' },
      ]);
      await assertNothingAccepted(['shape-1', 'shape-2']);
    });

    it('names attributes [a-z0-9_]{1,64}: uppercase, too long, dash, empty, non-ASCII → INVALID_ATTRIBUTE_NAME', async () => {
      const longest = 'n'.repeat(64);
      const res = await update([
        item('names-1', {
          attributes: {
            Plan: 1,
            ['n'.repeat(65)]: 1,
            'first-name': 1,
            '': 1,
            café: 1,
            'a b': 1,
            'a/b': 1,
            ok_name: 1,
          },
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/attributes/Plan', code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 0, path: `/attributes/${'n'.repeat(65)}`, code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 0, path: '/attributes/first-name', code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 0, path: '/attributes/', code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 0, path: '/attributes/café', code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 0, path: '/attributes/a b', code: 'INVALID_ATTRIBUTE_NAME' },
        { index: 0, path: '/attributes/a~1b', code: 'INVALID_ATTRIBUTE_NAME' }, // RFC 6901 escaping
      ]);
      await assertNothingAccepted(['names-1']);
      const ok = await writeAndRead([item('names-2', { attributes: { [longest]: 1, a_0: 'x' } })], 'names-2');
      assert.deepEqual(ok.attributes, { [longest]: 1, a_0: 'x' });
    });

    it('refuses a $ attribute that is not native with UNKNOWN_NATIVE_ATTRIBUTE', async () => {
      const res = await update([
        item('natives-unknown', {
          attributes: { $email: 'a@example.com', $foo: 'x', $: 1, $Timezone: 'UTC', $add: ['x'] },
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/attributes/$email', code: 'UNKNOWN_NATIVE_ATTRIBUTE' },
        { index: 0, path: '/attributes/$foo', code: 'UNKNOWN_NATIVE_ATTRIBUTE' },
        { index: 0, path: '/attributes/$', code: 'UNKNOWN_NATIVE_ATTRIBUTE' },
        { index: 0, path: '/attributes/$Timezone', code: 'UNKNOWN_NATIVE_ATTRIBUTE' },
        { index: 0, path: '/attributes/$add', code: 'UNKNOWN_NATIVE_ATTRIBUTE' },
      ]);
      await assertNothingAccepted(['natives-unknown']);
    });

    it('refuses wrong value types with INVALID_ATTRIBUTE_TYPE', async () => {
      const res = await update([
        item('types-1', {
          attributes: {
            address: { city: 'Paris' }, // an object that is not $add/$remove
            empty: {},
            mixed_op: { $add: ['a'], $set: ['b'] },
            add_not_array: { $add: 'a' },
            add_numbers: { $add: [1] },
            scores: [1, 2], // array of numbers
            nested: [['a']],
            nulls: [null],
            $email_marketing: 1, // number for a consent
            $timezone: true,
          },
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/attributes/address', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/empty', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/mixed_op', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/add_not_array/$add', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/add_numbers/$add/0', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/scores/0', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/scores/1', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/nested/0', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/nulls/0', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/$email_marketing', code: 'INVALID_ATTRIBUTE_TYPE' },
        { index: 0, path: '/attributes/$timezone', code: 'INVALID_ATTRIBUTE_TYPE' },
      ]);
      await assertNothingAccepted(['types-1']);
    });

    it('refuses non-finite numbers (1e400 parses to Infinity) rather than storing them as a deletion', async () => {
      const before = await writeAndRead(
        [item('infinity-1', { attributes: { score: 5, plan: 'pro' } })],
        'infinity-1',
      );
      assert.deepEqual(before.attributes, { score: 5, plan: 'pro' });
      const res = await update(
        '[{"identifiers":{"custom_id":"infinity-1"},"attributes":{"score":1e400,"debt":-1e400}}]',
        {
          'content-type': 'application/json',
        },
      );
      assertValidation(res, [
        { index: 0, path: '/attributes/score', code: 'INVALID_NUMBER' },
        { index: 0, path: '/attributes/debt', code: 'INVALID_NUMBER' },
      ]);
      // In event attributes the same number would be stored as null.
      const event = await update(
        '[{"identifiers":{"custom_id":"infinity-2"},"events":[{"name":"paid","attributes":{"amount":1e400}}]}]',
        {
          'content-type': 'application/json',
        },
      );
      assertError(event, 400, 'VALIDATION_FAILED', 'event attribute');
      assert.deepEqual(
        (event.body.error.details as Expected[]).map((d) => [d.index, d.path]),
        [[0, '/events/0/attributes/amount']],
      );
      await assertNothingAccepted(['infinity-2']);
      const still = await h.api('GET', '/v1/profiles/infinity-1');
      assert.deepEqual(
        still.body.attributes,
        { score: 5, plan: 'pro' },
        'an out-of-range number must not delete the attribute',
      );
    });

    it('refuses invalid native values, each with its own code', async () => {
      const res = await update([
        item('natives-bad-0', {
          attributes: {
            $phone_number: '12',
            $timezone: 'Mars/Olympus_Mons',
            $email_address: 'ada.example.com',
            $language: '12',
            $region: 'FRA',
            $email_marketing: 'yes',
            $sms_marketing: 'Subscribed',
          },
        }),
        item('natives-bad-1', {
          attributes: {
            $phone_number: 'call me maybe',
            $timezone: '',
            $email_address: 'a@b',
            $language: 'english',
            $region: 'XX',
          },
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/attributes/$phone_number', code: 'INVALID_PHONE_NUMBER' },
        { index: 0, path: '/attributes/$timezone', code: 'INVALID_TIMEZONE' },
        { index: 0, path: '/attributes/$email_address', code: 'INVALID_EMAIL' },
        { index: 0, path: '/attributes/$language', code: 'INVALID_LANGUAGE' },
        { index: 0, path: '/attributes/$region', code: 'INVALID_REGION' },
        { index: 0, path: '/attributes/$email_marketing', code: 'INVALID_CONSENT' },
        { index: 0, path: '/attributes/$sms_marketing', code: 'INVALID_CONSENT' },
        { index: 1, path: '/attributes/$phone_number', code: 'INVALID_PHONE_NUMBER' },
        { index: 1, path: '/attributes/$timezone', code: 'INVALID_TIMEZONE' },
        { index: 1, path: '/attributes/$email_address', code: 'INVALID_EMAIL' },
        { index: 1, path: '/attributes/$language', code: 'INVALID_LANGUAGE' },
        { index: 1, path: '/attributes/$region', code: 'INVALID_REGION' },
      ]);
      await assertNothingAccepted(['natives-bad-0', 'natives-bad-1']);
      // And valid ones are normalised (E.164, upper-case region), with null clearing a native.
      const ok = await writeAndRead(
        [
          item('natives-ok', {
            attributes: {
              $phone_number: '+33 6 12 34 56 78',
              $region: 'de',
              $sms_marketing: 'unsubscribed',
              $timezone: null,
            },
          }),
        ],
        'natives-ok',
      );
      assert.deepEqual(ok.attributes, {
        $phone_number: '+33612345678',
        $region: 'DE',
        $sms_marketing: 'unsubscribed',
      });
    });

    it('refuses $region codes that are not countries (ZZ is "Unknown Region")', async () => {
      const res = await update([item('region-zz', { attributes: { $region: 'ZZ' } })]);
      assertValidation(res, [{ index: 0, path: '/attributes/$region', code: 'INVALID_REGION' }]);
      await assertNothingAccepted(['region-zz']);
    });

    it('refuses strings over 2,048 characters with STRING_TOO_LONG, in attributes, arrays and event attributes', async () => {
      const long = 'x'.repeat(2049);
      const res = await update([
        item('strings-1', {
          attributes: { bio: long, tags: ['ok', long], list: { $add: [long] } },
          events: [{ name: 'note', attributes: { text: long, deep: { inner: [long] } } }],
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/attributes/bio', code: 'STRING_TOO_LONG' },
        { index: 0, path: '/attributes/tags/1', code: 'STRING_TOO_LONG' },
        { index: 0, path: '/attributes/list/$add/0', code: 'STRING_TOO_LONG' },
        { index: 0, path: '/events/0/attributes/text', code: 'STRING_TOO_LONG' },
        { index: 0, path: '/events/0/attributes/deep/inner/0', code: 'STRING_TOO_LONG' },
      ]);
      await assertNothingAccepted(['strings-1']);
      const ok = await writeAndRead(
        [item('strings-2', { attributes: { bio: 'y'.repeat(2048) } })],
        'strings-2',
      );
      assert.equal(ok.attributes.bio.length, 2048);
    });

    it('refuses arrays over 100 items with ARRAY_TOO_LONG, and more than 100 attributes with TOO_MANY_ATTRIBUTES', async () => {
      const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`);
      const attrs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`a${i}`, i]));
      const res = await update([
        item('limits-0', {
          attributes: { tags: words(101), more: { $add: words(101) }, less: { $remove: words(101) } },
        }),
        item('limits-1', { attributes: attrs(101) }),
        item('limits-2', {
          events: [
            { name: 'e', attributes: { list: words(101) } },
            { name: 'e', attributes: attrs(101) },
          ],
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/attributes/tags', code: 'ARRAY_TOO_LONG' },
        { index: 0, path: '/attributes/more/$add', code: 'ARRAY_TOO_LONG' },
        { index: 0, path: '/attributes/less/$remove', code: 'ARRAY_TOO_LONG' },
        { index: 1, path: '/attributes', code: 'TOO_MANY_ATTRIBUTES' },
        { index: 2, path: '/events/0/attributes/list', code: 'ARRAY_TOO_LONG' },
        { index: 2, path: '/events/1/attributes', code: 'TOO_MANY_ATTRIBUTES' },
      ]);
      await assertNothingAccepted(['limits-0', 'limits-1', 'limits-2']);
      const ok = await writeAndRead(
        [item('limits-3', { attributes: { ...attrs(99), tags: words(100) } })],
        'limits-3',
      );
      assert.equal(Object.keys(ok.attributes).length, 100);
      assert.equal(ok.attributes.tags.length, 100);
    });

    it('refuses event times more than 30 days past, more than 1 hour ahead, or unparseable', async () => {
      const now = Date.now();
      const res = await update([
        item('times-0', {
          events: [
            { name: 'old', time: new Date(now - 31 * DAY).toISOString() },
            { name: 'future', time: new Date(now + 2 * HOUR).toISOString() },
            { name: 'old_ms', time: now - 40 * DAY },
            { name: 'future_ms', time: now + 3 * HOUR },
            { name: 'words', time: 'yesterday' },
            { name: 'no_zone', time: '2026-11-01T10:00:00' },
            { name: 'not_a_date', time: '2026-13-45T10:00:00Z' },
            { name: 'empty', time: '' },
            { name: 'fraction', time: now + 0.5 },
            { name: 'bool', time: true },
          ],
        }),
      ]);
      assertValidation(res, [
        { index: 0, path: '/events/0/time', code: 'EVENT_TIME_TOO_OLD' },
        { index: 0, path: '/events/1/time', code: 'EVENT_TIME_IN_FUTURE' },
        { index: 0, path: '/events/2/time', code: 'EVENT_TIME_TOO_OLD' },
        { index: 0, path: '/events/3/time', code: 'EVENT_TIME_IN_FUTURE' },
        { index: 0, path: '/events/4/time', code: 'INVALID_TIME' },
        { index: 0, path: '/events/5/time', code: 'INVALID_TIME' },
        { index: 0, path: '/events/6/time', code: 'INVALID_TIME' },
        { index: 0, path: '/events/7/time', code: 'INVALID_TIME' },
        { index: 0, path: '/events/8/time', code: 'INVALID_TYPE' },
        { index: 0, path: '/events/9/time', code: 'INVALID_TYPE' },
      ]);
      await assertNothingAccepted(['times-0']);
      const ok = await writeAndRead(
        [
          item('times-1', {
            events: [
              { name: 'recent', time: new Date(now - 29 * DAY).toISOString() },
              { name: 'soon', time: now + 30 * 60_000 },
            ],
          }),
        ],
        'times-1',
      );
      assert.deepEqual(ok.event_counts, { recent: 1, soon: 1 });
    });

    it('refuses unknown fields with UNKNOWN_FIELD and missing ones with REQUIRED', async () => {
      const res = await update([
        { identifiers: { custom_id: 'fields-0' }, traits: { plan: 'pro' } },
        { identifiers: { custom_id: 'fields-1', email: 'a@example.com' } },
        {
          identifiers: { custom_id: 'fields-2' },
          events: [{ name: 'e', properties: {} }, { time: new Date().toISOString() }],
        },
        { attributes: { plan: 'pro' } },
        { identifiers: {} },
        { identifiers: { custom_id: '' } },
        { identifiers: { custom_id: 42 } },
        { identifiers: { custom_id: 'x'.repeat(256) } },
      ]);
      assertValidation(res, [
        { index: 0, path: '/traits', code: 'UNKNOWN_FIELD' },
        { index: 1, path: '/identifiers/email', code: 'UNKNOWN_FIELD' },
        { index: 2, path: '/events/0/properties', code: 'UNKNOWN_FIELD' },
        { index: 2, path: '/events/1/name', code: 'REQUIRED' },
        { index: 3, path: '/identifiers', code: 'REQUIRED' },
        { index: 4, path: '/identifiers/custom_id', code: 'REQUIRED' },
        { index: 5, path: '/identifiers/custom_id', code: 'INVALID_LENGTH' },
        { index: 6, path: '/identifiers/custom_id', code: 'INVALID_TYPE' },
        { index: 7, path: '/identifiers/custom_id', code: 'INVALID_LENGTH' },
      ]);
      await assertNothingAccepted(['fields-0', 'fields-1', 'fields-2']);
    });

    it('refuses a NUL character in any stored string at the door, on every backend, instead of acknowledging it', async () => {
      // PostgreSQL cannot store U+0000 in text or jsonb: a 202 here would be a write that is
      // acknowledged and then never takes effect (it ends in quarantine).
      const res = await update([
        item('nul-0', { attributes: { note: 'a\u0000b', tags: ['ok', 'c\u0000'] } }),
        item('nul-1', { events: [{ name: 'e', attributes: { note: 'd\u0000' } }] }),
      ]);
      assertError(res, 400, 'VALIDATION_FAILED');
      const where = (res.body.error.details as Expected[]).map((d) => `${d.index} ${d.path}`).sort();
      assert.deepEqual(where, ['0 /attributes/note', '0 /attributes/tags/1', '1 /events/0/attributes/note']);
      const install = await h.api('POST', '/v1/installations', {
        install_id: 'nul-i',
        custom_id: 'nul-2',
        platform: 'android',
        push_token: 'f'.repeat(40),
        app_version: '1.0\u0000',
      });
      assertError(install, 400, 'VALIDATION_FAILED', 'installation');
      assert.deepEqual(
        (install.body.error.details as Expected[]).map((d) => d.path),
        ['/app_version'],
      );
      await assertNothingAccepted(['nul-0', 'nul-1', 'nul-2']);
    });

    it('reports every bad message of a Segment batch with its index and a path into that message', async () => {
      const res = await send(`${h.url}/segment/v1/batch`, {
        headers: { ...basic(h.secretKey), 'content-type': 'application/json' },
        body: JSON.stringify({
          batch: [
            { type: 'identify', traits: { plan: 'pro' } }, // no userId or anonymousId
            { type: 'identify', userId: 'segment-ok', traits: { plan: 'pro' } },
            { type: 'track', userId: 'segment-bad', event: 'Noted', properties: { note: 'x'.repeat(2049) } },
          ],
        }),
      });
      assertValidation(res, [
        { index: 0, path: '/userId', code: 'REQUIRED' },
        { index: 2, path: '/properties/note', code: 'STRING_TOO_LONG' },
      ]);
      await assertNothingAccepted(['segment-ok', 'segment-bad']);
    });

    describe('installations', () => {
      const register = (body: unknown, key?: string) =>
        h.api('POST', '/v1/installations', body, key ? bearer(key) : undefined);

      it('refuses an iOS token that is not hex, a web_push without keys, push_token on web, web_push on iOS, and unknown platforms', async () => {
        const cases: { body: Record<string, unknown>; expected: Expected[] }[] = [
          {
            body: { install_id: 'inst-0', custom_id: 'inst-p0', platform: 'ios', push_token: 'z'.repeat(64) },
            expected: [{ path: '/push_token', code: 'INVALID_PUSH_TOKEN' }],
          },
          {
            body: { install_id: 'inst-1', custom_id: 'inst-p1', platform: 'ios', push_token: 'abc123' },
            expected: [{ path: '/push_token', code: 'INVALID_PUSH_TOKEN' }],
          },
          {
            body: {
              install_id: 'inst-2',
              custom_id: 'inst-p2',
              platform: 'web',
              web_push: { endpoint: 'https://push.example.com/x' },
            },
            expected: [{ path: '/web_push/keys', code: 'REQUIRED' }],
          },
          {
            body: { install_id: 'inst-3', custom_id: 'inst-p3', platform: 'web', push_token: 'a'.repeat(64) },
            expected: [{ path: '/push_token', code: 'INVALID_FIELD_FOR_PLATFORM' }],
          },
          {
            body: { install_id: 'inst-4', custom_id: 'inst-p4', platform: 'ios', web_push: validWebPush() },
            expected: [{ path: '/web_push', code: 'INVALID_FIELD_FOR_PLATFORM' }],
          },
          {
            body: { install_id: 'inst-5', custom_id: 'inst-p5', platform: 'windows' },
            expected: [{ path: '/platform', code: 'INVALID_VALUE' }],
          },
          {
            body: {
              install_id: 'inst-6',
              custom_id: 'inst-p6',
              platform: 'web',
              web_push: { ...validWebPush(), endpoint: 'http://push.example.com/x' },
            },
            expected: [{ path: '/web_push/endpoint', code: 'INVALID_URL' }],
          },
          {
            body: {
              install_id: 'inst-7',
              custom_id: 'inst-p7',
              platform: 'web',
              web_push: { ...validWebPush(), keys: { p256dh: 'short', auth: 'short' } },
            },
            expected: [
              { path: '/web_push/keys/p256dh', code: 'INVALID_KEY' },
              { path: '/web_push/keys/auth', code: 'INVALID_KEY' },
            ],
          },
          {
            body: { custom_id: 'inst-p8', token: 'x' },
            expected: [
              { path: '/install_id', code: 'REQUIRED' },
              { path: '/platform', code: 'REQUIRED' },
              { path: '/token', code: 'UNKNOWN_FIELD' },
            ],
          },
        ];
        for (const { body, expected } of cases) {
          // Public keys are allowed here; both kinds get the same answer.
          assertValidation(await register(body), expected, JSON.stringify(body).slice(0, 120));
          assertValidation(
            await register(body, h.publicKey),
            expected,
            `public key: ${JSON.stringify(body).slice(0, 120)}`,
          );
        }
        await assertNothingAccepted(cases.map((c) => c.body.custom_id as string));
      });
    });

    describe('keys (I10)', () => {
      const routes: { method: string; path: string; body?: unknown; basic?: boolean }[] = [
        { method: 'POST', path: '/v1/profiles/update', body: [item('auth-victim')] },
        {
          method: 'POST',
          path: '/v1/installations',
          body: { install_id: 'auth-i', platform: 'android', custom_id: 'auth-victim' },
        },
        { method: 'GET', path: '/v1/profiles/auth-victim' },
        { method: 'GET', path: '/v1/profiles/auth-victim/events' },
        { method: 'DELETE', path: '/v1/profiles/auth-victim' },
        {
          method: 'POST',
          path: '/segment/v1/batch',
          body: { batch: [{ type: 'identify', userId: 'auth-victim' }] },
          basic: true,
        },
      ];
      const call = (route: (typeof routes)[number], headers: Record<string, string>) =>
        send(`${h.url}${route.path}`, {
          method: route.method,
          headers: {
            ...headers,
            ...(route.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(route.body === undefined ? {} : { body: JSON.stringify(route.body) }),
        });

      it('answers 401 UNAUTHORIZED without a key or with a malformed Authorization header, on every endpoint', async () => {
        for (const route of routes) {
          const variants: Record<string, string>[] = [
            {},
            { authorization: '' },
            { authorization: 'Bearer' },
            { authorization: `Token ${h.secretKey}` },
            { authorization: h.secretKey },
          ];
          for (const headers of variants) {
            assertError(
              await call(route, headers),
              401,
              'UNAUTHORIZED',
              `${route.method} ${route.path} ${JSON.stringify(headers)}`,
            );
          }
        }
        await assertNothingAccepted(['auth-victim']);
      });

      it('answers 401 UNAUTHORIZED for an unknown key', async () => {
        const forged = `${h.secretKey.slice(0, -1)}${h.secretKey.endsWith('A') ? 'B' : 'A'}`;
        for (const route of routes) {
          for (const headers of [
            bearer(forged),
            bearer('sk_not-a-key'),
            basic(forged),
            bearer(`pk_${'0'.repeat(40)}`),
          ]) {
            assertError(
              await call(route, headers),
              401,
              'UNAUTHORIZED',
              `${route.method} ${route.path} ${JSON.stringify(headers)}`,
            );
          }
        }
        await assertNothingAccepted(['auth-victim']);
      });

      it('answers 401 UNAUTHORIZED for a revoked key, also one the server had cached as valid', async () => {
        const extra = await h.app.control.createKey(h.projectId, 'secret', 'to be revoked');
        const used = await update([item('revoked-before')], bearer(extra.key));
        assert.equal(used.status, 202);
        await h.app.control.revokeKey(extra.record.id);
        // The server's key cache follows the control plane within its refresh interval (1 s); a
        // revocation made elsewhere (the CLI) therefore needs a moment. Poll, bounded.
        const deadline = Date.now() + 10_000;
        let probe = await h.api('GET', '/v1/profiles/revoked-before', undefined, bearer(extra.key));
        while (probe.status !== 401 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          probe = await h.api('GET', '/v1/profiles/revoked-before', undefined, bearer(extra.key));
        }
        assertError(probe, 401, 'UNAUTHORIZED', 'revoked key read');
        for (const route of routes) {
          const headers = route.basic ? basic(extra.key) : bearer(extra.key);
          assertError(
            await call(route, headers),
            401,
            'UNAUTHORIZED',
            `revoked key: ${route.method} ${route.path}`,
          );
        }
        assertError(
          await update([item('revoked-after')], bearer(extra.key)),
          401,
          'UNAUTHORIZED',
          'revoked key write',
        );
        await assertNothingAccepted(['auth-victim', 'revoked-after']);
      });

      it('answers 403 FORBIDDEN to a public key on every secret endpoint', async () => {
        for (const route of routes.filter((r) => r.path !== '/v1/installations')) {
          const headers = route.basic ? basic(h.publicKey) : bearer(h.publicKey);
          assertError(await call(route, headers), 403, 'FORBIDDEN', `${route.method} ${route.path}`);
        }
        await assertNothingAccepted(['auth-victim']);
      });

      it('keeps projects apart: a key of project A never reads or writes project B (I10)', async () => {
        const b = await h.app.control.createProject(`tenant-b-${randomUUID().slice(0, 8)}`, { cellId: 'c1' });
        const A = h.secretKey;
        const B = b.secretKey.key;
        // Same custom_id in both projects, different data.
        const inB = await writeAndRead(
          [item('tenant-shared', { attributes: { owner: 'b' }, events: [{ name: 'b_only' }] })],
          'tenant-shared',
          B,
        );
        assert.deepEqual(inB.attributes, { owner: 'b' });
        const inA = await writeAndRead(
          [item('tenant-shared', { attributes: { owner: 'a' } })],
          'tenant-shared',
          A,
        );
        assert.deepEqual(inA.attributes, { owner: 'a' });
        assert.deepEqual(inA.event_counts, {}, "B's events leak into A");
        // A profile that exists only in B is invisible to A, for every read.
        await writeAndRead([item('tenant-b-only', { attributes: { secret: 'b' } })], 'tenant-b-only', B);
        assertError(
          await h.api('GET', '/v1/profiles/tenant-b-only', undefined, bearer(A)),
          404,
          'PROFILE_NOT_FOUND',
        );
        assertError(
          await h.api('GET', '/v1/profiles/tenant-b-only/events', undefined, bearer(A)),
          404,
          'PROFILE_NOT_FOUND',
        );
        // A's writes and erasures of that id touch only A.
        const del = await h.api('DELETE', '/v1/profiles/tenant-shared', undefined, bearer(A));
        assert.equal(del.status, 202);
        const inst = await h.api(
          'POST',
          '/v1/installations',
          { install_id: 'tenant-dev', platform: 'android', custom_id: 'tenant-b-only' },
          bearer(h.publicKey),
        );
        assert.equal(inst.status, 202);
        const seg = await send(`${h.url}/segment/v1/identify`, {
          headers: { ...basic(A), 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'tenant-b-only', traits: { owner: 'a' } }),
        });
        assert.equal(seg.status, 200);
        // Idempotency keys are per project: the same key with different bodies is not a conflict across projects.
        const idemA = await update([item('tenant-idem', { attributes: { owner: 'a' } })], {
          ...bearer(A),
          'idempotency-key': 'tenant-key',
        });
        const idemB = await update([item('tenant-idem', { attributes: { owner: 'b' } })], {
          ...bearer(B),
          'idempotency-key': 'tenant-key',
        });
        assert.equal(idemA.status, 202);
        assert.equal(idemB.status, 202, JSON.stringify(idemB.body));
        assert.equal(idemB.headers.get('idempotent-replayed'), null);

        const bShared = await h.api(
          'GET',
          `/v1/profiles/tenant-shared?wait_for=${idemB.body.ingest_id}`,
          undefined,
          bearer(B),
        );
        assert.equal(bShared.status, 200, "A's erasure removed B's profile");
        assert.deepEqual(bShared.body.attributes, { owner: 'b' });
        assert.deepEqual(bShared.body.event_counts, { b_only: 1 });
        const bOnly = await h.api('GET', '/v1/profiles/tenant-b-only', undefined, bearer(B));
        assert.deepEqual(bOnly.body.attributes, { secret: 'b' });
        assert.deepEqual(bOnly.body.installations, [], "A's installation was linked to B's profile");
        const bIdem = await h.api('GET', '/v1/profiles/tenant-idem', undefined, bearer(B));
        assert.deepEqual(bIdem.body.attributes, { owner: 'b' });
        const aShared = await h.api('GET', '/v1/profiles/tenant-shared', undefined, bearer(A));
        assertError(aShared, 404, 'PROFILE_NOT_FOUND', "A's erasure");
        const aOnly = await h.api('GET', '/v1/profiles/tenant-b-only', undefined, bearer(A));
        assert.deepEqual(aOnly.body.attributes, { owner: 'a' });
        assert.deepEqual(
          aOnly.body.installations.map((i: { install_id: string }) => i.install_id),
          ['tenant-dev'],
        );
      });
    });

    it('rate-limits per project: 429 RATE_LIMITED with Retry-After, nothing accepted, other projects unaffected', async () => {
      const limited = await h.app.control.createProject(`rate-limited-${randomUUID().slice(0, 8)}`, {
        rateLimitPerSecond: 2,
        cellId: 'c1',
      });
      const headBefore = await logHead();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => update([item(`rl-${i}`)], bearer(limited.secretKey.key))),
      );
      const refused = results.filter((r) => r.status === 429);
      const accepted = results.filter((r) => r.status === 202);
      assert.ok(
        refused.length > 0,
        `20 simultaneous requests at 2/s were all accepted: ${results.map((r) => r.status).join(',')}`,
      );
      assert.equal(accepted.length + refused.length, results.length, results.map((r) => r.status).join(','));
      for (const r of refused) {
        assertError(r, 429, 'RATE_LIMITED');
        assertRetryAfter(r);
      }
      // Only the accepted requests reached the log.
      assert.equal(await logHead(), headBefore + accepted.length);
      // The limit is the project's: the demo project (same cell) is not slowed down.
      const demo = await update([item('rl-demo')]);
      assert.equal(demo.status, 202);
    });

    it('refuses an Idempotency-Key longer than 255 characters with 400, and accepts 255', async () => {
      const long = await update([item('idem-long')], { 'idempotency-key': 'k'.repeat(256) });
      assertValidation(long, [{ path: '/headers/idempotency-key', code: 'INVALID_LENGTH' }]);
      const max = await update([item('idem-max')], { 'idempotency-key': 'm'.repeat(255) });
      assert.equal(max.status, 202);
      const again = await update([item('idem-max')], { 'idempotency-key': 'm'.repeat(255) });
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      await assertNothingAccepted(['idem-long']);
    });

    it('remembers no Idempotency-Key of a rejected request: the same key then works with a valid body', async () => {
      const bad = await update([item('idem-reuse', { attributes: { Bad: 1 } })], {
        'idempotency-key': 'reuse-me',
      });
      assertValidation(bad, [{ index: 0, path: '/attributes/Bad', code: 'INVALID_ATTRIBUTE_NAME' }]);
      const good = await update([item('idem-reuse', { attributes: { good: 1 } })], {
        'idempotency-key': 'reuse-me',
      });
      assert.equal(good.status, 202, JSON.stringify(good.body));
      assert.equal(good.headers.get('idempotent-replayed'), null);
    });

    it('survives 200 random malformed bodies: each gets a 4xx with the error shape, none a 5xx, and the server keeps answering', async (t) => {
      const seed = Number(process.env.HERALD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
      t.diagnostic(`fuzz seed ${seed} (rerun with HERALD_FUZZ_SEED=${seed})`);
      const cases = fuzzCases(seed, 200);
      const headBefore = await logHead();
      const failures: string[] = [];
      const answers = new Map<string, number>();
      for (const [n, c] of cases.entries()) {
        const res = await send(`${h.url}${c.path}`, {
          headers: {
            ...(c.path.startsWith('/segment') ? basic(h.secretKey) : bearer(h.secretKey)),
            'content-type': c.contentType,
          },
          body: c.body,
        });
        const answer = `${res.status} ${res.body?.error?.code ?? '?'}`;
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
        const label = `#${n} ${c.kind} ${c.path} ${c.contentType} ${JSON.stringify(c.body.slice(0, 160))}`;
        try {
          assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
          assertError(res, res.status, res.body?.error?.code ?? '(none)');
          assert.ok(typeof res.body.error.code === 'string' && /^[A-Z_]+$/.test(res.body.error.code));
        } catch (error) {
          failures.push(
            `${label} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)} (${(error as Error).message.split('\n')[0]})`,
          );
        }
      }
      t.diagnostic(`answers: ${[...answers].map(([a, n]) => `${a} ×${n}`).join(', ')}`);
      assert.deepEqual(
        failures,
        [],
        `seed ${seed}: ${failures.length} bodies were not refused with a 4xx:\n${failures.join('\n')}`,
      );
      assert.equal(await logHead(), headBefore, `seed ${seed}: a refused body reached the log`);
      const health = await h.api('GET', '/v1/health');
      assert.equal(health.status, 200);
      const after = await writeAndRead([item('fuzz-after', { attributes: { ok: true } })], 'fuzz-after');
      assert.deepEqual(after.attributes, { ok: true });
    });
  });
}

describe('event time windows and calendar dates, on a fixed clock (I9)', () => {
  // 2026-03-10T12:00:00Z: February 30 is inside the 30-day window, so only a real date check refuses it.
  const nowMs = Date.UTC(2026, 2, 10, 12);
  let h: TestApp;
  before(async () => {
    h = await startTestApp('sqlite', { clock: new ManualClock(nowMs) });
    await warmUp(h);
  });
  after(async () => {
    await h?.stop();
  });

  it('draws the window exactly at 30 days back and 1 hour ahead', async () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const res = await h.api('POST', '/v1/profiles/update', [
      item('edge-0', {
        events: [
          { name: 'a', time: iso(nowMs - 30 * DAY) },
          { name: 'b', time: iso(nowMs - 30 * DAY - 1) },
          { name: 'c', time: iso(nowMs + HOUR) },
          { name: 'd', time: iso(nowMs + HOUR + 1) },
          { name: 'e', time: nowMs - 30 * DAY - 1 },
          { name: 'f', time: nowMs + HOUR + 1 },
        ],
      }),
    ]);
    assertValidation(res, [
      { index: 0, path: '/events/1/time', code: 'EVENT_TIME_TOO_OLD' },
      { index: 0, path: '/events/3/time', code: 'EVENT_TIME_IN_FUTURE' },
      { index: 0, path: '/events/4/time', code: 'EVENT_TIME_TOO_OLD' },
      { index: 0, path: '/events/5/time', code: 'EVENT_TIME_IN_FUTURE' },
    ]);
    const ok = await h.api('POST', '/v1/profiles/update', [
      item('edge-1', {
        events: [
          { name: 'a', time: iso(nowMs - 30 * DAY) },
          { name: 'c', time: iso(nowMs + HOUR) },
        ],
      }),
    ]);
    assert.equal(ok.status, 202);
  });

  it('refuses dates that do not exist (February 30) instead of rolling them over to March', async () => {
    const res = await h.api('POST', '/v1/profiles/update', [
      item('feb30-0', { events: [{ name: 'e', time: '2026-02-30T10:00:00Z' }] }),
      item('feb30-1', { attributes: { renewal: '2026-02-30' } }),
    ]);
    assertValidation(res, [
      { index: 0, path: '/events/0/time', code: 'INVALID_TIME' },
      { index: 1, path: '/attributes/renewal', code: 'INVALID_DATE' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Random malformed bodies. Every generated body is invalid by construction (each generator says
// why), so the only right answers are 4xx.

interface FuzzCase {
  kind: string;
  path: string;
  contentType: string;
  body: string;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NATIVE_NAMES = new Set([
  '$email_address',
  '$email_marketing',
  '$phone_number',
  '$sms_marketing',
  '$language',
  '$region',
  '$timezone',
]);
const HUGE_NUMBERS = [
  '1e400',
  '-1e400',
  '123456789012345678901234567890123456789',
  '1E-400',
  '-0',
  '9007199254740993',
  '4.9e-325',
];

function fuzzCases(seed: number, count: number): FuzzCase[] {
  const random = mulberry32(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(values: readonly T[]): T => values[int(values.length)]!;
  const chars = [
    'a',
    'z',
    '0',
    '_',
    'Z',
    'é',
    'ß',
    '漢',
    '字',
    '😀',
    '\u202e',
    '\u0301',
    '\u200b',
    '\ud800',
    '\udfff',
    '\n',
    '"',
    '\\',
    ' ',
    '$',
    '/',
    '~',
    '\u0000',
    '\u007f',
  ];
  const str = (max = 12): string => Array.from({ length: int(max) + 1 }, () => pick(chars)).join('');
  let hugeCount = 0;
  const huge = new Map<string, string>();
  /** A placeholder replaced after stringify by a number literal JSON.stringify cannot write. */
  const hugeNumber = (): string => {
    const token = `__HUGE_${hugeCount++}__`;
    huge.set(`"${token}"`, pick(HUGE_NUMBERS));
    return token;
  };
  const primitive = (): unknown =>
    pick<() => unknown>([
      () => null,
      () => random() < 0.5,
      () => pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 5e-324]),
      () => str(),
      hugeNumber,
    ])();
  const json = (depth: number): unknown => {
    if (depth <= 0 || random() < 0.4) return primitive();
    if (random() < 0.5) return Array.from({ length: int(4) }, () => json(depth - 1));
    return Object.fromEntries(
      Array.from({ length: int(4) }, () => [
        pick([str(), 'identifiers', 'custom_id', '$add', 'events', '__proto__', 'constructor']),
        json(depth - 1),
      ]),
    );
  };
  const nonObject = (): unknown =>
    pick<() => unknown>([
      () => null,
      () => random() < 0.5,
      () => 7,
      () => str(),
      hugeNumber,
      () => [json(2)],
    ])();
  const nonArray = (): unknown =>
    pick<() => unknown>([
      () => null,
      () => random() < 0.5,
      () => 7,
      () => str(),
      hugeNumber,
      () => ({ [str()]: json(2) }),
    ])();
  const nonString = (): unknown =>
    pick<() => unknown>([
      () => null,
      () => random() < 0.5,
      () => 7,
      hugeNumber,
      () => [str()],
      () => ({ v: str() }),
    ])();
  const nested = (depth: number, leaf: string): string =>
    `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
  const validItem = (): Record<string, any> => ({
    identifiers: { custom_id: `fuzz-${int(1e9)}` },
    attributes: { plan: 'pro', tags: ['a'], $email_marketing: 'subscribed' },
    events: [{ name: 'opened', attributes: { n: 1 } }],
  });
  const badAttributeName = (): string => `Bad${str(6)}`; // an upper-case letter is never allowed
  const unknownDollar = (): string => {
    let name = `$${str(8).replace(/[^a-z]/g, '')}`;
    while (NATIVE_NAMES.has(name)) name += 'x';
    return name;
  };
  const unknownField = (known: string[]): string => {
    let name = `x${str(8)}`;
    while (known.includes(name)) name += 'x';
    return name;
  };

  /** Each mutation makes a valid profile item invalid. */
  const itemMutations: ((it: Record<string, any>) => unknown)[] = [
    () => nonObject(),
    (it) => ({ ...it, identifiers: nonObject() }),
    (it) => ({ ...it, identifiers: { custom_id: nonString() } }),
    (it) => ({ ...it, identifiers: { custom_id: pick(['', 'x'.repeat(256 + int(500))]) } }),
    (it) => ({ attributes: it.attributes }),
    (it) => ({ ...it, [unknownField(['identifiers', 'attributes', 'events'])]: json(3) }),
    (it) => ({ ...it, attributes: pick([null, 7, str(), [json(2)], true]) }),
    (it) => ({ ...it, attributes: { ...it.attributes, [badAttributeName()]: json(2) } }),
    (it) => ({ ...it, attributes: { ...it.attributes, [unknownDollar()]: json(2) } }),
    (it) => ({ ...it, attributes: { ...it.attributes, obj: { [`k${str(4)}`]: json(3) } } }),
    (it) => ({ ...it, attributes: { ...it.attributes, list: [str(), nonString()] } }),
    (it) => ({
      ...it,
      attributes: {
        ...it.attributes,
        $email_marketing: pick<() => unknown>([() => 1, () => true, () => [str()], () => `${str()}!`])(),
      },
    }),
    (it) => ({ ...it, events: nonArray() }),
    (it) => ({ ...it, events: [nonObject()] }),
    (it) => ({ ...it, events: [{ name: pick([nonString(), '']) }] }),
    (it) => ({
      ...it,
      events: [
        {
          name: 'e',
          time: pick<() => unknown>([
            () => true,
            () => ({}),
            () => [1],
            () => 1.25,
            () => `t${str(10)}`,
            hugeNumber,
          ])(),
        },
      ],
    }),
    (it) => ({ ...it, events: [{ name: 'e', attributes: pick([null, 7, str(), [json(2)]]) }] }),
    (it) => ({
      ...it,
      events: [{ name: 'e', [unknownField(['name', 'time', 'id', 'attributes'])]: json(2) }],
    }),
  ];
  const installMutations: ((b: Record<string, any>) => unknown)[] = [
    () => pick([null, 7, str(), [json(2)], true]),
    (b) => ({ ...b, install_id: pick([nonString(), '']) }),
    (b) => ({ ...b, platform: pick<() => unknown>([() => `${str(5)}OS`, nonString])() }),
    (b) => ({ ...b, push_token: pick([7, true, { t: str() }, [str()]]) }),
    (b) => ({ ...b, web_push: pick([7, str(), [json(2)], { endpoint: str() }]) }),
    (b) => ({ ...b, push_enabled: pick(['yes', 1, null, [true]]) }),
    (b) => ({ ...b, app_version: pick([7, true, { v: 1 }]) }),
    (b) => ({
      ...b,
      [unknownField([
        'install_id',
        'custom_id',
        'platform',
        'push_token',
        'web_push',
        'push_enabled',
        'app_version',
      ])]: json(2),
    }),
    ({ platform: _platform, ...rest }) => rest,
  ];

  const generators: (() => Omit<FuzzCase, 'contentType'> & { contentType?: string })[] = [
    () => ({
      kind: 'profiles: body is not an array',
      path: '/v1/profiles/update',
      body: JSON.stringify(nonArray()),
    }),
    () => {
      const items = Array.from({ length: 1 + int(3) }, validItem);
      items.splice(int(items.length + 1), 0, pick(itemMutations)(validItem()) as Record<string, any>);
      return { kind: 'profiles: one mutated item', path: '/v1/profiles/update', body: JSON.stringify(items) };
    },
    () => {
      const depth = 1_000 + int(100_000);
      return {
        kind: 'profiles: deeply nested arrays',
        path: '/v1/profiles/update',
        body: `${'['.repeat(depth)}${']'.repeat(depth)}`,
      };
    },
    () => ({
      kind: 'profiles: deeply nested object body',
      path: '/v1/profiles/update',
      body: nested(1_000 + int(100_000), '1'),
    }),
    () => ({
      kind: 'profiles: deeply nested attribute value',
      path: '/v1/profiles/update',
      body: `[{"identifiers":{"custom_id":"fuzz-deep"},"attributes":{"a":${nested(2 + int(50_000), '"x"')}}}]`,
    }),
    () => ({
      kind: 'profiles: deeply nested event attributes',
      path: '/v1/profiles/update',
      body: `[{"identifiers":{"custom_id":"fuzz-deep"},"events":[{"name":"e","attributes":${nested(6 + int(50_000), '"x"')}}]}]`,
    }),
    () => ({
      kind: 'installations: body is not an object',
      path: '/v1/installations',
      body: JSON.stringify(pick([null, 7, str(), [json(2)]])),
    }),
    () => {
      const body = {
        install_id: `fuzz-${int(1e9)}`,
        custom_id: `fuzz-${int(1e9)}`,
        platform: 'android',
        push_token: 'f'.repeat(40),
        push_enabled: true,
      };
      return {
        kind: 'installations: mutated body',
        path: '/v1/installations',
        body: JSON.stringify(pick(installMutations)(body)),
      };
    },
    () => ({
      kind: 'segment batch: no batch array',
      path: '/segment/v1/batch',
      body: JSON.stringify(pick([nonArray(), { batch: nonArray() }, [json(2)]])),
    }),
    () => ({
      kind: 'segment batch: bad message',
      path: '/segment/v1/batch',
      body: JSON.stringify({
        batch: [
          { type: 'identify', userId: 'fuzz-ok' },
          pick<() => unknown>([
            () => nonObject(),
            () => ({ type: `x${str(6)}`, userId: 'u' }),
            () => ({ type: 'track', userId: 'u', event: pick([nonString(), '']) }),
            () => ({ type: 'identify', traits: json(2) }),
          ])(),
        ],
      }),
    }),
    () => ({
      kind: 'segment call: body is not an object',
      path: pick(['/segment/v1/identify', '/segment/v1/track']),
      body: JSON.stringify(pick([null, 7, str(), [json(2)]])),
    }),
    () => {
      const text = JSON.stringify([validItem()]);
      return {
        kind: 'raw: truncated JSON',
        path: pick(['/v1/profiles/update', '/v1/installations', '/segment/v1/batch']),
        body: text.slice(0, 1 + int(text.length - 1)),
      };
    },
    () => ({
      kind: 'raw: garbage',
      path: pick(['/v1/profiles/update', '/v1/installations', '/segment/v1/track']),
      body: `}${str(200)}`,
    }),
    () => ({
      kind: 'wrong content type',
      path: pick(['/v1/profiles/update', '/v1/installations', '/segment/v1/batch']),
      body: JSON.stringify([validItem()]),
      contentType: pick([
        'text/html',
        'application/xml',
        'application/octet-stream',
        'multipart/form-data; boundary=zz',
        'image/png',
        'text/plain',
      ]),
    }),
  ];

  return Array.from({ length: count }, () => {
    huge.clear();
    const c = pick(generators)();
    let body = c.body;
    for (const [token, literal] of huge) body = body.split(token).join(literal);
    return {
      kind: c.kind,
      path: c.path,
      body,
      contentType: c.contentType ?? pick(['application/json', 'application/json; charset=utf-8']),
    };
  });
}
