import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertRejected, callAs, messagesOf, putProfile, send, settle, sleep, uid } from './support/delivery-client.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Retargeting end to end (issue 4, message history): real sends through the sandbox, opens and
 * clicks reported through POST /v1/engagement (acknowledged in the log, applied by the applier),
 * and segments over "received / opened / clicked / suppressed" by send and by template, estimated
 * over HTTP on both backends. One project's reports never touch another's messages (I10).
 */
const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

for (const { backend, skip } of backends) {
  describe(`retargeting on message history (${backend})`, { skip }, () => {
    let h: TestApp;
    before(async () => {
      h = await startTestApp(backend);
      await sleep(2_500); // the delivery thread picks up the demo project's sandbox providers
    });
    after(async () => {
      await h?.stop();
    });

    const estimate = async (segment: unknown): Promise<number> => {
      const res = await h.api('POST', '/v1/segments/estimate', { segment });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.total as number;
    };

    it('received, opened, clicked and suppressed, by send and by template, within a window', async () => {
      const tag = uid();
      const template = await h.api('POST', '/v1/templates', { name: `promo-${tag}`, channel: 'email', variants: { default: { subject: 'Promo', html: '<p>Hi</p>' } } });
      assert.equal(template.status, 201, JSON.stringify(template.body));
      const ids = ['a', 'b', 'c'].map((x) => `rt-${x}-${tag}`);
      await putProfile(h, ids[0]!, { cohort: tag, $email_address: `${ids[0]}@example.com` });
      await putProfile(h, ids[1]!, { cohort: tag, $email_address: `${ids[1]}@example.com` });
      await putProfile(h, ids[2]!, { cohort: tag }); // no address: suppressed (NO_EMAIL)
      const sent = await send(h, { recipients: { custom_ids: ids }, channel: 'email', template_id: template.body.id });
      const report = await settle(h, sent);
      assert.equal(report.counts.sent, 2, JSON.stringify(report.counts));
      assert.equal(report.counts.suppressed, 1);

      const cohort = { attribute: 'cohort', op: 'eq', value: tag };
      const within = (s: Record<string, unknown>) => ({ and: [cohort, s] });
      assert.equal(await estimate(within({ message: 'received', send: sent.sendId })), 2);
      assert.equal(await estimate(within({ message: 'received', template: template.body.id, window: { last_days: 1 } })), 2);
      assert.equal(await estimate(within({ message: 'suppressed', send: sent.sendId })), 1);
      assert.equal(await estimate(within({ message: 'opened', send: sent.sendId })), 0);

      // A opens, B clicks (a click is an open too); C's suppressed message cannot be opened, but the report is still applied.
      const [msgA] = (await messagesOf(h, ids[0]!)).filter((m) => m.send_id === sent.sendId);
      const [msgB] = (await messagesOf(h, ids[1]!)).filter((m) => m.send_id === sent.sendId);
      assert.ok(msgA && msgB);
      const reported = await callAs(h, h.publicKey, 'POST', '/v1/engagement', [
        { message_id: msgA.id, type: 'opened' },
        { message_id: msgB.id, type: 'clicked', time: new Date(Date.now() - 60_000).toISOString() },
      ]);
      assert.equal(reported.status, 202, JSON.stringify(reported.body));
      await h.api('GET', `/v1/profiles/${ids[0]}?wait_for=${reported.body.ingest_id}`);
      assert.equal(await estimate(within({ message: 'opened', send: sent.sendId })), 2);
      assert.equal(await estimate(within({ message: 'clicked', send: sent.sendId })), 1);
      assert.equal(await estimate(within({ not: { message: 'clicked', template: template.body.id } })), 2, 'A and C did not click');
      assert.equal(await estimate(within({ message: 'opened', send: sent.sendId, window: { from: '2020-01-01', to: '2020-02-01' } })), 0);

      // I10: another project reporting on these ids changes nothing here, and cannot see them.
      const other = (await h.app.control.createProject(`rt-other-${uid()}`)).secretKey.key;
      const foreign = await callAs(h, other, 'POST', '/v1/engagement', [{ message_id: msgA.id, type: 'clicked' }]);
      assert.equal(foreign.status, 202);
      await callAs(h, other, 'GET', `/v1/profiles/nobody?wait_for=${foreign.body.ingest_id}`);
      assert.equal(await estimate(within({ message: 'clicked', send: sent.sendId })), 1);
      const theirs = await callAs(h, other, 'POST', '/v1/segments/estimate', { segment: { message: 'received', send: sent.sendId } });
      assert.equal(theirs.body.total, 0);
    });

    it('bad engagement reports are refused with the path of the bad field, and nothing is applied', async () => {
      assertRejected(await h.api('POST', '/v1/engagement', []), { code: 'VALIDATION_FAILED', path: '' });
      assertRejected(await h.api('POST', '/v1/engagement', { message_id: 'msg_x', type: 'opened' }), { code: 'VALIDATION_FAILED', path: '' });
      assertRejected(await h.api('POST', '/v1/engagement', [{ message_id: 'msg_x', type: 'opened' }, { message_id: 'msg_y', type: 'liked' }]), { path: '/1/type' });
      assertRejected(await h.api('POST', '/v1/engagement', [{ message_id: 'msg_x', type: 'opened', time: 'yesterday' }]), { path: '/0/time', detailCode: 'INVALID_TIME' });
      assertRejected(await h.api('POST', '/v1/engagement', [{ message_id: 'msg_x', type: 'opened', colour: 'red' }]), { path: '/0/colour' });
      assertRejected(await callAs(h, null, 'POST', '/v1/engagement', [{ message_id: 'msg_x', type: 'opened' }]), { status: 401 });
    });
  });
}
