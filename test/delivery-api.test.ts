import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalSandbox } from '../src/sandbox/sandbox.ts';
import {
  arrived,
  assertCountsAddUp,
  assertRejected,
  callAs,
  demoWebhookUrl,
  fcmToken,
  iosProfile,
  iosToken,
  messageFor,
  messagesOf,
  putInstallation,
  putProfile,
  readProfile,
  send,
  settle,
  SETTLE_DEADLINE_MS,
  sleep,
  standardWebhookSignatureValid,
  TERMINAL,
  uid,
  webSubscription,
} from './support/delivery-client.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * The delivery API end to end (issue 3, parts 7–9), against a real Herald and its sandbox, through
 * HTTP only: one send per channel arriving rendered at its stand-in, templates and their language
 * variants, consent and suppression, the accounting of every message (I4), idempotency, tenant
 * isolation (I10), and bad input answered 400 with a named code and nothing queued (I9).
 */

const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

for (const { backend, skip } of backends) {
  describe(`delivery API end to end (${backend})`, { skip }, () => {
    let h: TestApp;
    before(async () => {
      h = await startTestApp(backend);
      // The demo project's sandbox providers are wired once the server listens; the delivery thread
      // sees them at its next control-plane refresh (≤ 1 s). Sending sooner hits the bug pinned down
      // by 'a send made right after its provider is configured…' below; the other tests are not about it.
      await sleep(2_500);
    });
    after(async () => {
      await h?.stop();
    });

    it('push: one send reaches the iOS, Android and web installations of a profile, rendered, at APNs, FCM and Web Push', async () => {
      const id = `push-${uid()}`;
      const ios = iosToken();
      const android = fcmToken();
      const web = await webSubscription(h);
      await putProfile(h, id, { first_name: 'Ana' });
      await putInstallation(h, { install_id: `${id}-ios`, custom_id: id, platform: 'ios', push_token: ios });
      await putInstallation(h, {
        install_id: `${id}-android`,
        custom_id: id,
        platform: 'android',
        push_token: android,
      });
      await putInstallation(h, { install_id: `${id}-web`, custom_id: id, platform: 'web', web_push: web });

      const s = await send(h, {
        recipients: { custom_ids: [id] },
        channel: 'push',
        message: {
          title: 'Hi {{ profile.first_name }}',
          body: 'Order {{ data.order }} shipped ({{ message.id }})',
          deeplink: 'app://orders/{{ data.order }}',
          data: { order: '{{ data.order }}' },
          collapse_key: 'orders',
        },
        data: { order: 'A-17' },
      });
      const report = await settle(h, s);
      assert.equal(report.targeted, 3);
      assert.equal(report.counts.sent, 3, JSON.stringify(report.messages));

      const iosMessage = messageFor(report, `${id}-ios`);
      assert.equal(iosMessage.provider, 'apns');
      assert.equal(iosMessage.recipient, ios);
      const atApns = await arrived(h, { kind: 'apns', to: ios });
      assert.equal(atApns.length, 1, 'APNs received the notification once');
      assert.equal(atApns[0].headers['apns-id'], iosMessage.id, 'apns-id is the message id');
      assert.equal(atApns[0].headers['apns-push-type'], 'alert');
      assert.equal(atApns[0].headers['apns-collapse-id'], 'orders');
      assert.deepEqual(atApns[0].body.aps.alert, {
        title: 'Hi Ana',
        body: `Order A-17 shipped (${iosMessage.id})`,
      });
      assert.equal(atApns[0].body.deeplink, 'app://orders/A-17');
      assert.equal(atApns[0].body.order, 'A-17');

      const androidMessage = messageFor(report, `${id}-android`);
      assert.equal(androidMessage.provider, 'fcm');
      const atFcm = await arrived(h, { kind: 'fcm', to: android });
      assert.equal(atFcm.length, 1, 'FCM received the message once');
      assert.deepEqual(atFcm[0].body.notification, {
        title: 'Hi Ana',
        body: `Order A-17 shipped (${androidMessage.id})`,
      });
      assert.equal(atFcm[0].body.data.deeplink, 'app://orders/A-17');
      assert.equal(atFcm[0].body.data.order, 'A-17');
      assert.equal(atFcm[0].body.android.collapse_key, 'orders');

      const webMessage = messageFor(report, `${id}-web`);
      assert.equal(webMessage.provider, 'webpush');
      assert.equal(webMessage.recipient, web.endpoint);
      const atBrowser = await arrived(h, { kind: 'webpush', to: web.endpoint });
      assert.equal(atBrowser.length, 1, 'the browser received the push once');
      assert.equal(atBrowser[0].headers['content-encoding'], 'aes128gcm');
      // The sandbox decrypted it with the browser's keys: this is what the service worker sees.
      assert.equal(atBrowser[0].body.message_id, webMessage.id);
      assert.equal(atBrowser[0].body.title, 'Hi Ana');
      assert.equal(atBrowser[0].body.body, `Order A-17 shipped (${webMessage.id})`);
      assert.equal(atBrowser[0].body.deeplink, 'app://orders/A-17');

      for (const m of report.messages) {
        assert.equal(m.state, 'sent');
        assert.equal(m.custom_id, id);
        assert.ok(m.sent_at, 'sent_at is set');
        assert.ok(m.attempts >= 1);
      }
    });

    it('email: subject and HTML rendered, a text part generated from the HTML, to a profile and to a bare address', async () => {
      const id = `mail-${uid()}`;
      const address = `${id}@example.com`;
      const bare = `bare-${uid()}@example.com`;
      await putProfile(h, id, { first_name: 'Zoë', $email_address: address });
      const message = {
        subject: 'Your order {{ data.order }}, {{ profile.first_name | default: "friend" }}',
        html: '<h1>Hello {{ profile.first_name | default: "friend" }}</h1><p>Order <b>{{ data.order }}</b> has shipped.</p><p><a href="https://example.com/o/{{ data.order }}">Track it</a></p>',
        from: { email: 'shop@example.com', name: 'The Shop' },
        reply_to: 'help@example.com',
      };
      const toProfile = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'email',
          message,
          data: { order: 'A-17' },
        }),
      );
      const toBare = await settle(
        h,
        await send(h, { recipients: { emails: [bare] }, channel: 'email', message, data: { order: 'B-2' } }),
      );
      assert.equal(toProfile.counts.sent, 1, JSON.stringify(toProfile.messages));
      assert.equal(toBare.counts.sent, 1, JSON.stringify(toBare.messages));
      assert.equal(messageFor(toProfile, id).recipient, address);
      assert.equal(messageFor(toProfile, id).provider, 'smtp');

      const [mail, ...more] = await arrived(h, { kind: 'smtp', to: address });
      assert.equal(more.length, 0, 'one email arrived');
      assert.equal(mail.body.subject, 'Your order A-17, Zoë');
      assert.match(mail.body.html, /<h1>Hello Zoë<\/h1>/);
      assert.match(mail.body.html, /<b>A-17<\/b>/);
      assert.equal(mail.body.from, 'shop@example.com');
      assert.match(mail.headers.from, /The Shop/);
      assert.match(mail.headers['reply-to'] ?? '', /help@example\.com/);
      // The generated text part: the words without the markup, the link kept.
      assert.equal(typeof mail.body.text, 'string', 'the email has a text part');
      assert.match(mail.body.text, /Hello Zoë/);
      assert.match(mail.body.text, /Order A-17 has shipped\./);
      assert.match(mail.body.text, /https:\/\/example\.com\/o\/A-17/);
      assert.doesNotMatch(mail.body.text, /<\/?[a-z]/i, 'no HTML tags in the text part');
      assert.match(mail.raw, /multipart\/alternative/i);
      assert.match(mail.raw, /text\/plain/i);
      assert.match(mail.raw, /text\/html/i);

      const [bareMail, ...moreBare] = await arrived(h, { kind: 'smtp', to: bare });
      assert.equal(moreBare.length, 0);
      assert.equal(bareMail.body.subject, 'Your order B-2, friend', 'no profile: the default filter applies');
      assert.equal(messageFor(toBare, bare).custom_id, null);
    });

    it('SMS: rendered body delivered to the number; segments and encoding recorded, agreeing with the stand-in', async () => {
      const id = `sms-${uid()}`;
      await putProfile(h, id, { first_name: 'Ana', $phone_number: '+1 415 555 0142' });
      const gsm = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'sms',
          message: { body: 'Hi {{ profile.first_name }}, {{ data.text }}' },
          data: { text: 'x'.repeat(170) },
        }),
      );
      const unicode = await settle(
        h,
        await send(h, {
          recipients: { phone_numbers: ['+33 6 12 34 56 78'] },
          channel: 'sms',
          message: { body: `Привет! ${'ж'.repeat(70)}` },
        }),
      );
      const m1 = messageFor(gsm, id);
      assert.equal(m1.state, 'sent', JSON.stringify(m1));
      assert.equal(m1.recipient, '+14155550142', 'the number in E.164');
      assert.deepEqual(
        { segments: m1.details?.segments, encoding: m1.details?.encoding },
        { segments: 2, encoding: 'GSM-7' },
      );
      const [atSms1, ...more1] = await arrived(h, { kind: 'sms', to: '+14155550142' });
      assert.equal(more1.length, 0);
      assert.equal(atSms1.body.body, `Hi Ana, ${'x'.repeat(170)}`);
      assert.equal(
        atSms1.body.segments,
        m1.details.segments,
        'Herald and the stand-in count the same segments',
      );

      const m2 = messageFor(unicode, '+33612345678');
      assert.equal(m2.state, 'sent', JSON.stringify(m2));
      assert.deepEqual(
        { segments: m2.details?.segments, encoding: m2.details?.encoding },
        { segments: 2, encoding: 'UCS-2' },
      );
      const [atSms2] = await arrived(h, { kind: 'sms', to: '+33612345678' });
      assert.equal(atSms2.body.segments, 2);
      assert.equal(atSms2.body.encoding, 'UCS-2');
    });

    it('webhook: signed per Standard Webhooks (verified independently), webhook-id is the message id, custom_id in data', async () => {
      const id = `hook-${uid()}`;
      await putProfile(h, id, { first_name: 'Ana', plan: 'pro' });
      const report = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'webhook',
          message: {
            type: 'order.shipped',
            data: { order: '{{ data.order }}', who: '{{ profile.first_name }} ({{ profile.plan }})' },
          },
          data: { order: 'A-17' },
        }),
      );
      const m = messageFor(report, id);
      assert.equal(m.state, 'sent', JSON.stringify(m));
      assert.equal(m.provider, 'webhook');
      const url = demoWebhookUrl(h);
      const hits = (await arrived(h, { kind: 'webhook', to: url })).filter(
        (x) => x.headers['webhook-id'] === m.id,
      );
      assert.equal(hits.length, 1, 'the receiver got it once');
      const hook = hits[0];
      assert.equal(hook.body.type, 'order.shipped');
      assert.deepEqual(hook.body.data, { order: 'A-17', who: 'Ana (pro)', custom_id: id });
      assert.ok(
        Math.abs(Number(hook.headers['webhook-timestamp']) - Date.now() / 1000) < 300,
        'the timestamp is now',
      );
      const secret = (h.app.sandbox as LocalSandbox).trustStore.get('webhook', url)?.secret;
      assert.ok(secret, 'the sandbox knows the demo project’s webhook secret');
      assert.ok(
        standardWebhookSignatureValid(secret, hook.headers, JSON.stringify(hook.body)),
        'the v1 signature verifies',
      );
      assert.ok(
        !standardWebhookSignatureValid(
          secret,
          hook.headers,
          JSON.stringify({ ...hook.body, type: 'forged' }),
        ),
        'and a changed body does not',
      );
    });

    it('templates: the language variant (fr, fr-CA → fr, others → default); a missing variable fails only that message, with a readable reason', async () => {
      const created = await h.api('POST', '/v1/templates', {
        name: `welcome-${uid()}`,
        channel: 'email',
        variants: {
          default: {
            subject: 'Welcome, {{ profile.first_name }}',
            html: '<p>Hello {{ profile.first_name }}, your code is {{ data.code }}.</p>',
          },
          fr: {
            subject: 'Bienvenue, {{ profile.first_name }}',
            html: '<p>Bonjour {{ profile.first_name }}, votre code est {{ data.code }}.</p>',
          },
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const tag = uid();
      const people = {
        fr: { $language: 'fr', first_name: 'Amélie' },
        frca: { $language: 'fr-CA', first_name: 'Gabriel' },
        en: { $language: 'en', first_name: 'Ada' },
        ptbr: { $language: 'pt-BR', first_name: 'João' },
        none: { first_name: 'Kim' },
        missing: { $language: 'fr' },
      };
      const ids: Record<string, string> = {};
      for (const [who, attributes] of Object.entries(people)) {
        ids[who] = `tpl-${who}-${tag}`;
        await putProfile(h, ids[who], { ...attributes, $email_address: `${ids[who]}@example.com` });
      }
      const report = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: Object.values(ids) },
          channel: 'email',
          template_id: created.body.id,
          data: { code: '123' },
        }),
      );
      assert.equal(report.targeted, 6);
      assert.equal(
        report.counts.sent,
        5,
        JSON.stringify(report.messages.map((m: any) => [m.custom_id, m.state, m.reason])),
      );
      assert.equal(report.counts.failed, 1);
      const expected: Record<string, [string, RegExp]> = {
        fr: ['Bienvenue, Amélie', /Bonjour Amélie, votre code est 123\./],
        frca: ['Bienvenue, Gabriel', /Bonjour Gabriel/],
        en: ['Welcome, Ada', /Hello Ada, your code is 123\./],
        ptbr: ['Welcome, João', /Hello João/],
        none: ['Welcome, Kim', /Hello Kim/],
      };
      for (const [who, [subject, html]] of Object.entries(expected)) {
        assert.equal(messageFor(report, ids[who]!).state, 'sent');
        const mails = await arrived(h, { kind: 'smtp', to: `${ids[who]}@example.com` });
        assert.equal(mails.length, 1, `${who} got one email`);
        assert.equal(mails[0].body.subject, subject, `${who} got the right variant`);
        assert.match(mails[0].body.html, html);
      }
      const failed = messageFor(report, ids.missing!);
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error_code, 'TEMPLATE_ERROR');
      assert.match(failed.reason, /first_name/, 'the reason names the missing variable');
      assert.match(failed.reason, /subject|line/, 'and where it is');
      assert.equal(
        (await arrived(h, { kind: 'smtp', to: `${ids.missing}@example.com` })).length,
        0,
        'nothing was sent for it',
      );
    });

    it('templates: CRUD by id and name; a syntax error is refused with its path, line and column and changes nothing', async () => {
      const name = `receipt-${uid()}`;
      const body = {
        name,
        channel: 'sms',
        variants: { default: { body: 'Receipt {{ data.n }}' }, de: { body: 'Beleg {{ data.n }}' } },
      };
      const created = await h.api('POST', '/v1/templates', body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.id, /^tpl_/);
      assert.deepEqual(created.body.variants, body.variants);
      const byId = await h.api('GET', `/v1/templates/${created.body.id}`);
      const byName = await h.api('GET', `/v1/templates/${name}`);
      assert.equal(byId.status, 200);
      assert.deepEqual(byName.body, byId.body);
      const list = await h.api('GET', '/v1/templates');
      assert.ok(list.body.templates.some((t: any) => t.id === created.body.id));
      assertRejected(await h.api('POST', '/v1/templates', body), { status: 409, code: 'TEMPLATE_EXISTS' });

      const broken = await h.api('POST', '/v1/templates', {
        name: `broken-${uid()}`,
        channel: 'email',
        variants: {
          default: { subject: 'ok', html: '<p>ok</p>' },
          fr: { subject: 'ok', html: '<p>\n  {{ profile.first_name </p>' },
        },
      });
      const [detail] = assertRejected(broken, {
        code: 'VALIDATION_FAILED',
        detailCode: 'TEMPLATE_SYNTAX',
        path: '/variants/fr/html',
      });
      assert.match(detail.message, /line:?\s*2/, 'the line');
      assert.match(detail.message, /col(umn)?:?\s*\d+/, 'the column');
      assertRejected(
        await h.api('POST', '/v1/templates', {
          name: `nodefault-${uid()}`,
          channel: 'sms',
          variants: { fr: { body: 'x' } },
        }),
        {
          path: '/variants/default',
        },
      );
      assertRejected(
        await h.api('POST', '/v1/templates', {
          name: `badlang-${uid()}`,
          channel: 'sms',
          variants: { default: { body: 'x' }, 'not a tag!': { body: 'y' } },
        }),
        {
          detailCode: 'INVALID_LANGUAGE',
        },
      );
      assertRejected(
        await h.api('POST', '/v1/templates', {
          name: `shape-${uid()}`,
          channel: 'email',
          variants: { default: { body: 'sms content in an email' } },
        }),
        {
          path: '/variants/default/subject',
        },
      );

      const badUpdate = await h.api('PUT', `/v1/templates/${created.body.id}`, {
        ...body,
        variants: { default: { body: '{% if %}' } },
      });
      assertRejected(badUpdate, { detailCode: 'TEMPLATE_SYNTAX', path: '/variants/default/body' });
      assert.deepEqual(
        (await h.api('GET', `/v1/templates/${created.body.id}`)).body,
        byId.body,
        'a refused update changes nothing',
      );

      const updated = await h.api('PUT', `/v1/templates/${created.body.id}`, {
        ...body,
        variants: { default: { body: 'Receipt #{{ data.n }}' } },
      });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.deepEqual(updated.body.variants, { default: { body: 'Receipt #{{ data.n }}' } });
      const id = `tplsms-${uid()}`;
      await putProfile(h, id, { $phone_number: '+14155550199', $language: 'de' });
      const report = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'sms',
          template_id: name,
          data: { n: 42 },
        }),
      );
      assert.equal(messageFor(report, id).state, 'sent', 'a template is found by its name too');
      const [sms] = await arrived(h, { kind: 'sms', to: '+14155550199' });
      assert.equal(sms.body.body, 'Receipt #42', 'the updated template, default variant (de was removed)');

      const deleted = await h.api('DELETE', `/v1/templates/${created.body.id}`);
      assert.equal(deleted.status, 204);
      assertRejected(await h.api('GET', `/v1/templates/${created.body.id}`), {
        status: 404,
        code: 'TEMPLATE_NOT_FOUND',
      });
    });

    it('consent: marketing email and SMS need `subscribed` (else suppressed with a reason); transactional goes regardless', async () => {
      const tag = uid();
      const none = `c-none-${tag}`;
      const unsub = `c-unsub-${tag}`;
      const sub = `c-sub-${tag}`;
      const phone = { [none]: '+14155550101', [unsub]: '+14155550102', [sub]: '+14155550103' };
      await putProfile(h, none, { $email_address: `${none}@example.com`, $phone_number: phone[none] });
      await putProfile(h, unsub, {
        $email_address: `${unsub}@example.com`,
        $phone_number: phone[unsub],
        $email_marketing: 'unsubscribed',
        $sms_marketing: 'unsubscribed',
      });
      await putProfile(h, sub, {
        $email_address: `${sub}@example.com`,
        $phone_number: phone[sub],
        $email_marketing: 'subscribed',
        $sms_marketing: 'subscribed',
      });
      const everyone = [none, unsub, sub];

      const email = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: everyone },
          channel: 'email',
          category: 'marketing',
          message: { subject: 'Sale', html: '<p>Sale</p>' },
        }),
      );
      const sms = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: everyone },
          channel: 'sms',
          category: 'marketing',
          message: { body: 'Sale' },
        }),
      );
      for (const report of [email, sms]) {
        assert.deepEqual(
          [report.counts.sent, report.counts.suppressed],
          [1, 2],
          JSON.stringify(report.messages.map((m: any) => [m.custom_id, m.state])),
        );
        assert.equal(messageFor(report, sub).state, 'sent');
        for (const who of [none, unsub]) {
          const m = messageFor(report, who);
          assert.equal(m.state, 'suppressed');
          assert.equal(m.error_code, 'NOT_SUBSCRIBED');
          assert.match(m.reason, /not subscribed/);
          assert.equal(m.attempts, 0);
        }
      }
      assert.match(messageFor(email, none).reason, /no consent recorded/);
      assert.match(messageFor(email, unsub).reason, /unsubscribed/);
      for (const who of [none, unsub]) {
        assert.equal(
          (await arrived(h, { kind: 'smtp', to: `${who}@example.com` })).length,
          0,
          'no marketing email arrived',
        );
        assert.equal(
          (await arrived(h, { kind: 'sms', to: phone[who] })).length,
          0,
          'no marketing SMS arrived',
        );
      }
      const bare = await settle(
        h,
        await send(h, {
          recipients: { emails: [`bare-${tag}@example.com`] },
          channel: 'email',
          category: 'marketing',
          message: { subject: 'Sale', html: '<p>Sale</p>' },
        }),
      );
      assert.equal(
        bare.messages[0].state,
        'suppressed',
        'marketing to an address without a profile has no consent',
      );
      assert.equal(bare.messages[0].error_code, 'NO_CONSENT');

      const receipt = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: everyone },
          channel: 'email',
          message: { subject: 'Receipt', html: '<p>Thanks</p>' },
        }),
      );
      assert.equal(receipt.counts.sent, 3, 'transactional email goes to everyone');
      const code = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: everyone },
          channel: 'sms',
          category: 'transactional',
          message: { body: 'Code 1234' },
        }),
      );
      assert.equal(code.counts.sent, 3, 'transactional SMS goes to everyone');
      assert.equal(
        (await arrived(h, { kind: 'smtp', to: `${unsub}@example.com` }))[0].body.subject,
        'Receipt',
      );
    });

    it('push: permission off → suppressed PUSH_NOT_PERMITTED; no installation → suppressed; the permitted device still gets it', async () => {
      const id = `perm-${uid()}`;
      const on = iosToken();
      const off = iosToken();
      await putProfile(h, id, {});
      await putInstallation(h, { install_id: `${id}-on`, custom_id: id, platform: 'ios', push_token: on });
      await putInstallation(h, {
        install_id: `${id}-off`,
        custom_id: id,
        platform: 'ios',
        push_token: off,
        push_enabled: false,
      });
      const lonely = `lonely-${uid()}`;
      await putProfile(h, lonely, {});
      const report = await settle(
        h,
        await send(h, {
          recipients: { custom_ids: [id, lonely] },
          channel: 'push',
          category: 'marketing',
          message: { title: 'Hello' },
        }),
      );
      assert.equal(report.targeted, 3);
      assert.equal(messageFor(report, `${id}-on`).state, 'sent');
      const denied = messageFor(report, `${id}-off`);
      assert.equal(denied.state, 'suppressed');
      assert.equal(denied.error_code, 'PUSH_NOT_PERMITTED');
      assert.match(denied.reason, /not allowed/);
      const none = messageFor(report, lonely);
      assert.equal(none.state, 'suppressed');
      assert.equal(none.error_code, 'NO_PUSH_INSTALLATION');
      assert.equal(
        (await arrived(h, { kind: 'apns', to: off })).length,
        0,
        'nothing reached the device without permission',
      );
      assert.equal((await arrived(h, { kind: 'apns', to: on })).length, 1);
    });

    it('unknown recipients fail with NO_PROFILE / NO_INSTALLATION on every channel, and the others are sent', async () => {
      const known = `known-${uid()}`;
      const token = await iosProfile(h, known, {
        $email_address: `${known}@example.com`,
        $phone_number: '+14155550177',
      });
      const ghost = `ghost-${uid()}`;
      const messages: Record<string, Record<string, unknown>> = {
        push: { title: 'x' },
        email: { subject: 'x', html: '<p>x</p>' },
        sms: { body: 'x' },
        webhook: { data: { x: 1 } },
      };
      for (const [channel, message] of Object.entries(messages)) {
        const report = await settle(
          h,
          await send(h, { recipients: { custom_ids: [known, ghost] }, channel, message }),
        );
        assert.equal(report.targeted, 2, channel);
        assert.equal(messageFor(report, known).state, 'sent', `${channel}: the known profile gets it`);
        const m = messageFor(report, ghost);
        assert.equal(m.state, 'failed', channel);
        assert.equal(m.error_code, 'NO_PROFILE', channel);
        assert.match(m.reason, new RegExp(ghost), `${channel}: the reason names the id`);
      }
      const byInstall = await settle(
        h,
        await send(h, {
          recipients: { install_ids: [`ios-${known}`, 'no-such-install'] },
          channel: 'push',
          message: { title: 'x' },
        }),
      );
      assert.equal(messageFor(byInstall, `ios-${known}`).state, 'sent');
      assert.equal(messageFor(byInstall, 'no-such-install').error_code, 'NO_INSTALLATION');
      assert.equal(
        (await arrived(h, { kind: 'apns', to: token })).length,
        2,
        'the known device got both pushes',
      );
    });

    it('Idempotency-Key: a repeat answers the same send_id and creates no second message; another body with the key is 409', async () => {
      const id = `idem-${uid()}`;
      const token = await iosProfile(h, id);
      const key = `key-${uid()}`;
      const body = { recipients: { custom_ids: [id] }, channel: 'push', message: { title: 'Once' } };
      const first = await send(h, body, { 'idempotency-key': key });
      const second = await send(h, body, { 'idempotency-key': key });
      assert.equal(second.sendId, first.sendId, 'the same send_id');
      assert.equal(second.res.headers.get('idempotent-replayed'), 'true');
      const report = await settle(h, second);
      assert.equal(report.targeted, 1);
      await settle(h, first);
      const mine = await messagesOf(h, id);
      assert.equal(mine.length, 1, 'one message for the user');
      assert.equal((await arrived(h, { kind: 'apns', to: token })).length, 1, 'one push at APNs');
      assertRejected(
        await h.api(
          'POST',
          '/v1/send',
          { ...body, message: { title: 'Twice?' } },
          { 'idempotency-key': key },
        ),
        {
          status: 409,
          code: 'IDEMPOTENCY_CONFLICT',
        },
      );
      const third = await send(h, body, { 'idempotency-key': `${key}-other` });
      assert.notEqual(third.sendId, first.sendId, 'another key is another send');
    });

    it('GET /v1/messages?custom_id explains every outcome: state, reason, code, attempts, provider and history', async () => {
      const id = `why-${uid()}`;
      const token = await iosProfile(h, id, { $email_address: `${id}@example.com` });
      await putInstallation(h, {
        install_id: `${id}-muted`,
        custom_id: id,
        platform: 'ios',
        push_token: iosToken(),
        push_enabled: false,
      });
      const sends = [
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'email',
          message: { subject: 'Receipt', html: '<p>ok</p>' },
        }),
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'email',
          category: 'marketing',
          message: { subject: 'Sale', html: '<p>sale</p>' },
        }),
        await send(h, {
          recipients: { custom_ids: [id] },
          channel: 'email',
          message: { subject: 'Hi {{ profile.nickname }}', html: '<p>x</p>' },
        }),
        await send(h, { recipients: { custom_ids: [id] }, channel: 'push', message: { title: 'Ping' } }),
      ];
      for (const s of sends) await settle(h, s);
      const messages = await messagesOf(h, id);
      assert.equal(messages.length, 5, JSON.stringify(messages.map((m) => [m.channel, m.state])));
      for (let i = 1; i < messages.length; i++)
        assert.ok(messages[i - 1].created_at >= messages[i].created_at, 'newest first');
      const outcomes = messages.map((m) => `${m.channel}:${m.state}:${m.error_code ?? ''}`).sort();
      assert.deepEqual(outcomes, [
        'email:failed:TEMPLATE_ERROR',
        'email:sent:',
        'email:suppressed:NOT_SUBSCRIBED',
        'push:sent:',
        'push:suppressed:PUSH_NOT_PERMITTED',
      ]);
      for (const m of messages) {
        assert.ok((TERMINAL as readonly string[]).includes(m.state), `${m.id} is terminal`);
        assert.equal(m.custom_id, id);
        assert.ok(Array.isArray(m.history) && m.history.length > 0, 'it has a history');
        const last = m.history.at(-1);
        assert.equal(last.state, m.state, 'the history ends in the current state');
        if (m.state === 'sent') {
          assert.ok(m.provider, 'the provider that delivered it');
          assert.ok(m.sent_at);
          assert.equal(m.reason, null);
          assert.equal(m.history[0].state, 'queued', 'a sent message was queued first');
          assert.ok(m.attempts >= 1);
        } else {
          assert.ok(typeof m.reason === 'string' && m.reason.length > 10, `a readable reason for ${m.state}`);
          assert.equal(last.code, m.error_code, 'the history names the code');
          assert.equal(last.detail, m.reason, 'and the reason');
          assert.equal(m.attempts, 0, 'never attempted');
          assert.equal(m.sent_at, null);
        }
      }
      assert.deepEqual(await messagesOf(h, `nobody-${uid()}`), [], 'nobody has no messages');
      assert.equal((await arrived(h, { kind: 'apns', to: token })).length, 1);
      assertRejected(await h.api('GET', '/v1/messages'), { code: 'VALIDATION_FAILED' });
      assertRejected(await h.api('GET', '/v1/sends/snd_doesnotexist'), {
        status: 404,
        code: 'SEND_NOT_FOUND',
      });
    });

    it('a send of exactly 10,000 recipients is accepted and accounted for: counts add up to 10,000', async () => {
      const tag = uid();
      const real = [`big-a-${tag}`, `big-b-${tag}`];
      for (const id of real) await putProfile(h, id, {});
      const ids = [...real, ...Array.from({ length: 9_998 }, (_, i) => `big-ghost-${tag}-${i}`)];
      const report = await settle(
        h,
        await send(h, { recipients: { custom_ids: ids }, channel: 'webhook', message: { type: 'bulk' } }),
      );
      assert.equal(report.targeted, 10_000);
      assert.equal(report.counts.sent, 2);
      assert.equal(report.counts.failed, 9_998);
      assert.notEqual(report.next_cursor, null, 'the messages page');
    });

    it('I10: one project’s key never sees another’s sends, messages or profiles, and sends only to its own profiles', async () => {
      const shared = `shared-${uid()}`;
      await putProfile(h, shared, { first_name: 'Demo-Ana' });
      const demoSend = await send(h, {
        recipients: { custom_ids: [shared] },
        channel: 'webhook',
        message: { type: 'demo', data: { who: '{{ profile.first_name }}' } },
      });
      await settle(h, demoSend);

      const other = await h.app.control.createProject(`other-${uid()}`);
      const key = other.secretKey.key;
      assertRejected(await callAs(h, key, 'GET', `/v1/sends/${demoSend.sendId}`), {
        status: 404,
        code: 'SEND_NOT_FOUND',
      });
      assert.deepEqual(
        (await callAs(h, key, 'GET', `/v1/messages?send_id=${demoSend.sendId}`)).body.messages,
        [],
      );
      assert.deepEqual((await callAs(h, key, 'GET', `/v1/messages?custom_id=${shared}`)).body.messages, []);
      assert.equal((await callAs(h, key, 'GET', `/v1/profiles/${shared}`)).status, 404);
      const otherProviders = await callAs(h, key, 'GET', '/v1/providers');
      assert.equal(otherProviders.status, 200);
      assert.ok(
        otherProviders.body.providers.every((p: any) => p.configured === false),
        'the demo project’s providers are not the other’s',
      );
      assertRejected(
        await callAs(h, key, 'POST', '/v1/send', {
          recipients: { custom_ids: [shared] },
          channel: 'webhook',
          message: {},
        }),
        {
          code: 'PROVIDER_NOT_CONFIGURED',
        },
      );

      // The other project gets its own webhook receiver, and its own profile under the same custom_id.
      const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      const path = `/hooks/${other.project.id}`;
      await h.app.sandbox!.trust('webhook', `${h.app.sandbox!.endpoints.webhook}${path}`, { secret });
      const put = await callAs(h, key, 'PUT', '/v1/providers/webhook', {
        credentials: { url: `sandbox:${path}`, secret },
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      // The delivery thread learns of a new provider within its 1 s control-plane refresh; a send
      // made sooner is the separate bug the next test pins down. Isolation is what this test is about.
      await sleep(2_500);
      const profile = await callAs(h, key, 'POST', '/v1/profiles/update', [
        { identifiers: { custom_id: shared }, attributes: { first_name: 'Other-Ana' } },
      ]);
      assert.equal(profile.status, 202);
      const otherSendRes = await callAs(h, key, 'POST', '/v1/send', {
        recipients: { custom_ids: [shared] },
        channel: 'webhook',
        message: { type: 'other', data: { who: '{{ profile.first_name }}' } },
      });
      assert.equal(otherSendRes.status, 201, JSON.stringify(otherSendRes.body));
      const otherSend = {
        sendId: otherSendRes.body.send_id,
        ingestId: otherSendRes.body.ingest_id,
        res: otherSendRes,
      };
      let otherReport: any;
      for (let i = 0; i < 600; i++) {
        otherReport = (
          await callAs(h, key, 'GET', `/v1/sends/${otherSend.sendId}?wait_for=${otherSend.ingestId}`)
        ).body;
        if (otherReport.counts && otherReport.counts.queued + otherReport.counts.sending === 0) break;
        await new Promise((r) => setTimeout(r, 150));
      }
      assertCountsAddUp(otherReport);
      assert.equal(otherReport.counts.sent, 1, JSON.stringify(otherReport));
      const theirs = (
        await arrived(h, { kind: 'webhook', to: `${h.app.sandbox!.endpoints.webhook}${path}` })
      ).filter((x) => x.headers['webhook-id'] === otherReport.messages[0].id);
      assert.equal(theirs.length, 1);
      assert.equal(theirs[0].body.data.who, 'Other-Ana', 'rendered with the other project’s profile');
      const ours = (await arrived(h, { kind: 'webhook', to: demoWebhookUrl(h) })).filter(
        (x) => x.body.type === 'other',
      );
      assert.equal(ours.length, 0, 'nothing of the other project went to the demo project’s receiver');

      assertRejected(await h.api('GET', `/v1/sends/${otherSend.sendId}`), {
        status: 404,
        code: 'SEND_NOT_FOUND',
      });
      const demoView = await messagesOf(h, shared);
      assert.deepEqual(
        demoView.map((m) => m.send_id),
        [demoSend.sendId],
        'the demo key sees only the demo project’s message for this custom_id',
      );
      assert.equal((await readProfile(h, shared)).attributes.first_name, 'Demo-Ana');
    });

    it('a send made right after its provider is configured is delivered, not failed PROVIDER_NOT_CONFIGURED', async () => {
      const project = await h.app.control.createProject(`fresh-${uid()}`);
      const key = project.secretKey.key;
      const secret = `whsec_${Buffer.alloc(32, 5).toString('base64')}`;
      const path = `/hooks/${project.project.id}`;
      await h.app.sandbox!.trust('webhook', `${h.app.sandbox!.endpoints.webhook}${path}`, { secret });
      const profile = await callAs(h, key, 'POST', '/v1/profiles/update', [
        { identifiers: { custom_id: 'right-away' }, attributes: {} },
      ]);
      assert.equal(profile.status, 202);
      const put = await callAs(h, key, 'PUT', '/v1/providers/webhook', {
        credentials: { url: `sandbox:${path}`, secret },
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      // The API accepted the send because the provider is configured: the message must not then fail for want of it.
      const accepted = await callAs(h, key, 'POST', '/v1/send', {
        recipients: { custom_ids: ['right-away'] },
        channel: 'webhook',
        message: { type: 'first' },
      });
      assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
      let report: any;
      const deadline = Date.now() + SETTLE_DEADLINE_MS;
      while (Date.now() < deadline) {
        report = (
          await callAs(
            h,
            key,
            'GET',
            `/v1/sends/${accepted.body.send_id}?wait_for=${accepted.body.ingest_id}`,
          )
        ).body;
        if (report.counts && report.counts.queued + report.counts.sending === 0) break;
        await sleep(150);
      }
      assertCountsAddUp(report);
      const m = report.messages[0];
      assert.notEqual(
        m.error_code,
        'PROVIDER_NOT_CONFIGURED',
        `the message failed although its provider was configured: ${m.reason}`,
      );
      assert.equal(m.state, 'sent', JSON.stringify(m));
      const hits = (
        await arrived(h, { kind: 'webhook', to: `${h.app.sandbox!.endpoints.webhook}${path}` })
      ).filter((x) => x.headers['webhook-id'] === m.id);
      assert.equal(hits.length, 1);
    });

    it('I9: bad sends are refused with 400, a named code and the path, and nothing is queued', async () => {
      const before = await send(h, {
        recipients: { custom_ids: [`marker-${uid()}`] },
        channel: 'webhook',
        message: {},
      });
      await settle(h, before);
      const tag = uid();
      const ids: string[] = [];
      const who = (): string[] => {
        const id = `bad-${tag}-${ids.length}`;
        ids.push(id);
        return [id];
      };
      const sms = { body: 'x' };
      const emailMessage = { subject: 'x', html: '<p>x</p>' };
      const template = await h.api('POST', '/v1/templates', {
        name: `push-only-${tag}`,
        channel: 'push',
        variants: { default: { title: 'x' } },
      });
      assert.equal(template.status, 201);
      const cases: [
        string,
        unknown,
        { code?: string; detailCode?: string; path?: string; status?: number },
      ][] = [
        [
          'unknown channel',
          { recipients: { custom_ids: who() }, channel: 'fax', message: sms },
          { code: 'VALIDATION_FAILED', path: '/channel' },
        ],
        ['no channel', { recipients: { custom_ids: who() }, message: sms }, { path: '/channel' }],
        ['no recipients', { channel: 'sms', message: sms }, { path: '/recipients' }],
        [
          'no recipient list',
          { recipients: {}, channel: 'sms', message: sms },
          { detailCode: 'ONE_RECIPIENT_LIST', path: '/recipients' },
        ],
        [
          'an empty list',
          { recipients: { custom_ids: [] }, channel: 'sms', message: sms },
          { path: '/recipients/custom_ids' },
        ],
        [
          'two lists',
          {
            recipients: { custom_ids: who(), phone_numbers: ['+14155550123'] },
            channel: 'sms',
            message: sms,
          },
          { detailCode: 'ONE_RECIPIENT_LIST' },
        ],
        [
          'more than 10,000 recipients',
          {
            recipients: {
              custom_ids: Array.from({ length: 10_001 }, (_, i) => (i === 0 ? who()[0] : `many-${tag}-${i}`)),
            },
            channel: 'sms',
            message: sms,
          },
          { path: '/recipients/custom_ids' },
        ],
        [
          'emails on a push send',
          { recipients: { emails: ['a@example.com'] }, channel: 'push', message: { title: 'x' } },
          { detailCode: 'WRONG_RECIPIENTS_FOR_CHANNEL', path: '/recipients/emails' },
        ],
        [
          'install_ids on an email send',
          { recipients: { install_ids: ['i-1'] }, channel: 'email', message: emailMessage },
          { detailCode: 'WRONG_RECIPIENTS_FOR_CHANNEL' },
        ],
        [
          'phone numbers on a webhook send',
          { recipients: { phone_numbers: ['+14155550123'] }, channel: 'webhook', message: {} },
          { detailCode: 'WRONG_RECIPIENTS_FOR_CHANNEL' },
        ],
        [
          'an invalid email',
          {
            recipients: { emails: [`ok-${tag}@example.com`, 'not-an-email'] },
            channel: 'email',
            message: emailMessage,
          },
          { detailCode: 'INVALID_EMAIL', path: '/recipients/emails/1' },
        ],
        [
          'an invalid phone',
          { recipients: { phone_numbers: ['+14155550123', '12345'] }, channel: 'sms', message: sms },
          { detailCode: 'INVALID_PHONE_NUMBER', path: '/recipients/phone_numbers/1' },
        ],
        [
          'both message and template_id',
          {
            recipients: { custom_ids: who() },
            channel: 'push',
            message: { title: 'x' },
            template_id: template.body.id,
          },
          { detailCode: 'MESSAGE_OR_TEMPLATE' },
        ],
        [
          'neither message nor template_id',
          { recipients: { custom_ids: who() }, channel: 'push' },
          { detailCode: 'MESSAGE_OR_TEMPLATE' },
        ],
        [
          'a template for another channel',
          { recipients: { custom_ids: who() }, channel: 'sms', template_id: template.body.id },
          { detailCode: 'TEMPLATE_CHANNEL', path: '/template_id' },
        ],
        [
          'a Liquid syntax error',
          {
            recipients: { custom_ids: who() },
            channel: 'email',
            message: { subject: 'Hi {{ profile.first_name ', html: '<p>x</p>' },
          },
          { detailCode: 'TEMPLATE_SYNTAX', path: '/message/subject' },
        ],
        [
          'an email without a subject',
          { recipients: { custom_ids: who() }, channel: 'email', message: { html: '<p>x</p>' } },
          { path: '/message/subject' },
        ],
        [
          'SMS content on a push send',
          { recipients: { custom_ids: who() }, channel: 'push', message: { body: 'x', subject: 'y' } },
          { path: '/message/subject' },
        ],
        [
          'an empty push',
          { recipients: { custom_ids: who() }, channel: 'push', message: {} },
          { detailCode: 'EMPTY_MESSAGE' },
        ],
        [
          'an SMS without a body',
          { recipients: { custom_ids: who() }, channel: 'sms', message: {} },
          { path: '/message/body' },
        ],
        [
          'an unknown category',
          { recipients: { custom_ids: who() }, channel: 'sms', message: sms, category: 'spam' },
          { path: '/category' },
        ],
        [
          'a negative ttl',
          { recipients: { custom_ids: who() }, channel: 'sms', message: sms, ttl_seconds: -1 },
          { path: '/ttl_seconds' },
        ],
        [
          'an unknown field',
          { recipients: { custom_ids: who() }, channel: 'sms', message: sms, sendAt: 'now' },
          { path: '/sendAt' },
        ],
      ];
      for (const [what, body, expect] of cases) {
        const res = await h.api('POST', '/v1/send', body);
        try {
          assertRejected(res, expect);
        } catch (error) {
          throw new Error(`${what}: ${(error as Error).message}`);
        }
      }
      const syntax = await h.api(
        'POST',
        '/v1/send',
        cases.find(([what]) => what === 'a Liquid syntax error')![1],
      );
      const detail = syntax.body.error.details.find((d: any) => d.path === '/message/subject');
      assert.match(detail.message, /line:?\s*1/, 'the syntax error names the line');
      assert.match(detail.message, /col(umn)?:?\s*\d+/, 'and the column');
      assertRejected(await h.api('POST', '/v1/send', '{"recipients":', {}), { code: 'MALFORMED_JSON' });

      // Nothing was appended: the next send is the very next record of the log, and none of those users has a message.
      const afterwards = await send(h, {
        recipients: { custom_ids: [`marker-${uid()}`] },
        channel: 'webhook',
        message: {},
      });
      await settle(h, afterwards);
      const seq = (ingestId: string) => Number(/_(\d+)$/.exec(ingestId)![1]);
      assert.equal(seq(afterwards.ingestId), seq(before.ingestId) + 1, 'no refused send reached the log');
      for (const id of ids) assert.deepEqual(await messagesOf(h, id), [], `nothing queued for ${id}`);
    });

    it('I9: an unknown template_id is a 400 naming /template_id, and nothing is queued', async () => {
      const id = `notpl-${uid()}`;
      const res = await h.api('POST', '/v1/send', {
        recipients: { custom_ids: [id] },
        channel: 'sms',
        template_id: `no-such-template-${uid()}`,
      });
      // Expected (issue 3 part 9): a bad reference in the body is bad input (400) with its path, like every other field.
      assert.equal(res.status, 400, `unknown template_id answered ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.code, /TEMPLATE_NOT_FOUND|VALIDATION_FAILED/);
      assert.ok(
        res.body.error.code === 'TEMPLATE_NOT_FOUND' ||
          (res.body.error.details ?? []).some((d: any) => d.path === '/template_id'),
        'the answer names the template',
      );
      assert.deepEqual(await messagesOf(h, id), []);
    });

    it('a channel whose provider was deleted is refused with 400 PROVIDER_NOT_CONFIGURED; nothing is queued', async () => {
      const project = await h.app.control.createProject(`bare-${uid()}`);
      const key = project.secretKey.key;
      const secret = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
      const put = await callAs(h, key, 'PUT', '/v1/providers/webhook', {
        credentials: { url: 'sandbox:/hooks/bare', secret },
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.equal(put.body.configured, true);
      const ok = await callAs(h, key, 'POST', '/v1/send', {
        recipients: { custom_ids: ['u-1'] },
        channel: 'webhook',
        message: {},
      });
      assert.equal(ok.status, 201, 'with the provider, the send is accepted');

      assert.equal((await callAs(h, key, 'DELETE', '/v1/providers/webhook')).status, 204);
      const listed = await callAs(h, key, 'GET', '/v1/providers');
      assert.equal(listed.body.providers.find((p: any) => p.kind === 'webhook').configured, false);
      const refused = await callAs(h, key, 'POST', '/v1/send', {
        recipients: { custom_ids: ['u-2'] },
        channel: 'webhook',
        message: {},
      });
      assertRejected(refused, { code: 'PROVIDER_NOT_CONFIGURED', path: '/channel' });
      assertRejected(await callAs(h, key, 'DELETE', '/v1/providers/webhook'), {
        status: 404,
        code: 'NOT_FOUND',
      });

      const marker = await callAs(h, key, 'POST', '/v1/profiles/update', [
        { identifiers: { custom_id: 'u-3' }, attributes: {} },
      ]);
      await callAs(h, key, 'GET', `/v1/profiles/u-3?wait_for=${marker.body.ingest_id}`);
      assert.deepEqual(
        (await callAs(h, key, 'GET', '/v1/messages?custom_id=u-2')).body.messages,
        [],
        'nothing queued for the refused send',
      );
      assert.equal((await callAs(h, key, 'GET', '/v1/messages?custom_id=u-1')).body.messages.length, 1);
    });

    it('provider credentials are validated on PUT (400 with the path of each bad field, nothing saved) and never returned', async () => {
      const beforeList = (await h.api('GET', '/v1/providers')).body;
      assert.deepEqual(
        beforeList.providers.map((p: any) => p.kind).sort(),
        ['apns', 'fcm', 'sms', 'smtp', 'webhook', 'webpush'],
        'every provider kind is listed',
      );
      const webhook = assertRejected(
        await h.api('PUT', '/v1/providers/webhook', {
          credentials: { url: 'ftp://example.com/hook', secret: 'short' },
        }),
        {
          code: 'VALIDATION_FAILED',
          path: '/credentials/url',
        },
      );
      assert.ok(
        webhook.some((d) => d.path === '/credentials/secret'),
        'every bad field is named',
      );
      assertRejected(
        await h.api('PUT', '/v1/providers/webhook', {
          credentials: {
            url: 'http://127.0.0.1:9/hook',
            secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
          },
        }),
        {
          detailCode: 'PRIVATE_TARGET',
          path: '/credentials/url',
        },
      );
      assertRejected(
        await h.api('PUT', '/v1/providers/apns', {
          credentials: {
            team_id: 'ABCDE12345',
            key_id: 'ABCDE12345',
            private_key: 'not a key',
            topic: 'com.example.app',
          },
        }),
        {
          path: '/credentials/private_key',
        },
      );
      assertRejected(
        await h.api('PUT', '/v1/providers/apns', {
          credentials: { team_id: 'short', key_id: 'ABCDE12345', private_key: 'x', topic: 'com.example.app' },
        }),
        {
          path: '/credentials/team_id',
        },
      );
      assertRejected(await h.api('PUT', '/v1/providers/sms', { credentials: {} }), {
        code: 'VALIDATION_FAILED',
      });
      assertRejected(await h.api('PUT', '/v1/providers/smtp', {}), { path: '/credentials' });
      assertRejected(await h.api('PUT', '/v1/providers/carrier-pigeon', { credentials: {} }), {
        status: 404,
        code: 'UNKNOWN_PROVIDER',
      });
      assert.deepEqual(
        (await h.api('GET', '/v1/providers')).body,
        beforeList,
        'refused credentials change nothing',
      );

      const project = await h.app.control.createProject(`creds-${uid()}`);
      const secret = `whsec_${Buffer.alloc(40, 9).toString('base64')}`;
      const saved = await callAs(h, project.secretKey.key, 'PUT', '/v1/providers/webhook', {
        credentials: { url: 'https://hooks.example.com/herald', secret },
      });
      assert.equal(saved.status, 200);
      assert.ok(
        !JSON.stringify(saved.body).includes(secret.slice(6, 30)),
        'the answer does not echo the secret',
      );
      const listed = await callAs(h, project.secretKey.key, 'GET', '/v1/providers');
      const text = JSON.stringify(listed.body);
      assert.ok(!text.includes(secret.slice(6, 30)), 'GET /v1/providers does not return the secret');
      assert.ok(!text.includes('hooks.example.com'), 'nor the rest of the credentials');
      const demoSecret = (h.app.sandbox as LocalSandbox).trustStore.get(
        'webhook',
        demoWebhookUrl(h),
      )!.secret!;
      const demoText = JSON.stringify((await h.api('GET', '/v1/providers')).body);
      assert.ok(!demoText.includes(demoSecret.slice(6, 30)));
      assert.doesNotMatch(demoText, /BEGIN|private_key|secret|password|auth_token|credentials/i);
      for (const p of listed.body.providers) {
        assert.deepEqual(Object.keys(p).sort(), [
          'channel',
          'configured',
          'default_limits',
          'disabled_reason',
          'kind',
          'label',
          'limits',
          'platforms',
          'sandbox',
          'updated_at',
        ]);
      }
      assert.equal(
        (await h.api('GET', '/v1/providers', undefined, { authorization: `Bearer ${h.publicKey}` })).status,
        403,
        'a public key cannot read providers',
      );
    });

    it('flow control: a project sets its own rate and concurrency per provider; bad limits are refused and change nothing', async () => {
      const project = await h.app.control.createProject(`limits-${uid()}`);
      const key = project.secretKey.key;
      const credentials = { url: 'https://hooks.example.com/herald', secret: `whsec_${Buffer.alloc(40, 3).toString('base64')}` };
      const defaults = (await callAs(h, key, 'GET', '/v1/providers')).body.providers.find((p: any) => p.kind === 'webhook');
      assert.deepEqual(defaults.limits, defaults.default_limits, 'an unconfigured provider shows its documented defaults');
      assert.ok(defaults.default_limits.rate_per_second > 0 && defaults.default_limits.max_concurrency > 0);

      const saved = await callAs(h, key, 'PUT', '/v1/providers/webhook', { credentials, limits: { rate_per_second: 7 } });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      assert.deepEqual(saved.body.limits, { rate_per_second: 7, max_concurrency: defaults.default_limits.max_concurrency }, 'an omitted limit keeps its default');
      assert.deepEqual(saved.body.default_limits, defaults.default_limits);
      const before = (await callAs(h, key, 'GET', '/v1/providers')).body;
      assert.deepEqual(before.providers.find((p: any) => p.kind === 'webhook').limits, saved.body.limits);

      assertRejected(await callAs(h, key, 'PUT', '/v1/providers/webhook', { credentials, limits: { rate_per_second: 0 } }), {
        code: 'VALIDATION_FAILED',
        path: '/limits/rate_per_second',
      });
      assertRejected(await callAs(h, key, 'PUT', '/v1/providers/webhook', { credentials, limits: { max_concurrency: 2.5 } }), {
        path: '/limits/max_concurrency',
      });
      assertRejected(await callAs(h, key, 'PUT', '/v1/providers/webhook', { credentials, limits: { burst: 3 } }), {
        path: '/limits/burst',
      });
      assertRejected(await callAs(h, key, 'PUT', '/v1/providers/webhook', { credentials, limits: 'fast' }), { path: '/limits' });
      assert.deepEqual((await callAs(h, key, 'GET', '/v1/providers')).body, before, 'refused limits change nothing');

      // Saving again without limits goes back to the defaults.
      const reset = await callAs(h, key, 'PUT', '/v1/providers/webhook', { credentials });
      assert.deepEqual(reset.body.limits, defaults.default_limits);

      // The demo project's sandbox email and SMS are not paced at a real relay's quota.
      const demo = (await h.api('GET', '/v1/providers')).body.providers;
      const smtp = demo.find((p: any) => p.kind === 'smtp');
      assert.equal(smtp.sandbox, true);
      assert.ok(smtp.limits.rate_per_second > smtp.default_limits.rate_per_second, JSON.stringify(smtp));
    });
  });
}
