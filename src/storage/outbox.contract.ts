import assert from 'node:assert/strict';
import { it } from 'node:test';
import { CatalogCache, planBatch } from '../ingest/apply-plan.ts';
import type { CellStore } from './cell-store.ts';
import { emptyEffects } from './cell-store.ts';
import type { NewMessage } from './outbox-port.ts';
import { LANES } from './outbox-port.ts';
import type { StoreFixture } from './cell-store.contract.ts';

const LOG = 'log-outbox';
const P = 'prj_outbox';
const T0 = Date.UTC(2026, 5, 1, 12);

function message(n: number, overrides: Partial<NewMessage> = {}): NewMessage {
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    projectId: P,
    sendId: 'send_1',
    idempotencyKey: `send_1|push|token-${n}`,
    channel: 'push',
    category: 'transactional',
    lane: LANES.transactional,
    customId: `u${n}`,
    installId: `i${n}`,
    platform: 'ios',
    recipient: `token-${n}`,
    webPush: null,
    content: { title: 'Hi', body: `message ${n}` },
    state: 'queued',
    reason: null,
    errorCode: null,
    expiresAt: null,
    createdAt: T0 + n,
    ...overrides,
  };
}

async function enqueue(store: CellStore, messages: NewMessage[]): Promise<void> {
  const from = await store.appliedSeq(LOG);
  const effects = emptyEffects();
  effects.sends.push({ id: 'send_1', projectId: P, channel: 'push', category: 'transactional', source: 'api', summary: { n: messages.length }, createdAt: T0 });
  effects.messages.push(...messages);
  await store.applyBatch(LOG, from, from + 1, () => Promise.resolve(effects));
}

/** The outbox contract every cell store passes (I4: one message per key, settled once, nothing stuck). */
export function runOutboxContract(makeFixture: () => Promise<StoreFixture>): void {
  const withStore = async (fn: (store: CellStore, fx: StoreFixture) => Promise<void>) => {
    const fx = await makeFixture();
    const store = await fx.open();
    try {
      await fn(store, fx);
    } finally {
      await store.close();
      await fx.cleanup();
    }
  };

  it('stores a message once per idempotency key, however often its batch is replayed (I4)', () =>
    withStore(async (store) => {
      await enqueue(store, [message(1), message(2)]);
      await enqueue(store, [message(1), message(2), message(3)]);
      const report = await store.getSend(P, 'send_1');
      assert.equal(report?.counts.queued, 3);
      const page = await store.listMessages(P, { sendId: 'send_1', limit: 10 });
      assert.equal(page.messages.length, 3);
      for (const m of page.messages) assert.deepEqual(m.history.map((h) => h.state), ['queued'], 'one history entry each');
      assert.equal(await store.getSend('prj_other', 'send_1'), null, 'a send is visible only to its project (I10)');
    }));

  it('claims due messages in lane order with a lease, and never the same message twice', () =>
    withStore(async (store) => {
      await enqueue(store, [
        message(1, { lane: LANES.campaign }),
        message(2, { lane: LANES.transactional }),
        message(3, { lane: LANES.triggered }),
      ]);
      const first = await store.claimMessages('worker-a', T0 + 1000, 30_000, 2);
      assert.deepEqual(
        first.map((m) => [m.recipient, m.state, m.attempts, m.leaseOwner]),
        [
          ['token-2', 'sending', 1, 'worker-a'],
          ['token-3', 'sending', 1, 'worker-a'],
        ],
      );
      const second = await store.claimMessages('worker-b', T0 + 1000, 30_000, 10);
      assert.deepEqual(second.map((m) => m.recipient), ['token-1']);
      assert.deepEqual(await store.claimMessages('worker-c', T0 + 1000, 30_000, 10), []);
      assert.equal(await store.countDue(T0 + 1000), 0);
    }));

  it('takes back the messages of a dispatcher whose lease expired', () =>
    withStore(async (store) => {
      await enqueue(store, [message(1)]);
      const [m] = await store.claimMessages('dead-worker', T0 + 100, 1_000, 10);
      assert.ok(m);
      assert.deepEqual(await store.claimMessages('alive', T0 + 500, 1_000, 10), [], 'still leased');
      const [again] = await store.claimMessages('alive', T0 + 5_000, 1_000, 10);
      assert.equal(again?.id, m.id);
      assert.equal(again?.attempts, 2);
      // The dead worker's late answer is ignored: it no longer holds the lease.
      const late = await store.settleMessages([
        { id: m.id, owner: 'dead-worker', claimedAttempt: 1, state: 'sent', reason: null, errorCode: null, at: T0 + 6_000, target: { projectId: P, channel: 'push', customId: 'u1', installId: 'i1', recipient: 'token-1' } },
      ]);
      assert.deepEqual(late, { applied: 0, lostLeases: 1 });
    }));

  it('ignores a late outcome of an older claim, even from the same dispatcher, and keeps renewed leases (I4)', () =>
    withStore(async (store) => {
      await enqueue(store, [message(1), message(2)]);
      const target = { projectId: P, channel: 'push' as const, customId: 'u1', installId: 'i1', recipient: 'token-1' };
      const [first, second] = await store.claimMessages('w', T0 + 100, 1_000, 10);
      assert.ok(first && second);
      // The second message's lease is renewed; the first one's lapses and the same dispatcher claims it again.
      assert.equal(await store.renewLeases('w', [second.id], T0 + 10_000), 1);
      const again = await store.claimMessages('w', T0 + 5_000, 1_000, 10);
      assert.deepEqual(again.map((m) => [m.id, m.attempts]), [[first.id, 2]], 'only the lapsed lease was taken back');
      const stale = await store.settleMessages([{ id: first.id, owner: 'w', claimedAttempt: 1, state: 'sent', reason: null, errorCode: null, at: T0 + 5_001, target }]);
      assert.deepEqual(stale, { applied: 0, lostLeases: 1 }, 'the outcome of the first claim no longer counts');
      const current = await store.settleMessages([{ id: first.id, owner: 'w', claimedAttempt: 2, state: 'sent', reason: null, errorCode: null, at: T0 + 5_002, target }]);
      assert.deepEqual(current, { applied: 1, lostLeases: 0 });
    }));

  it('settles outcomes with history, schedules retries and records provider ids', () =>
    withStore(async (store) => {
      await enqueue(store, [message(1), message(2)]);
      const claimed = await store.claimMessages('w', T0 + 100, 30_000, 10);
      const target = (n: number) => ({ projectId: P, channel: 'push' as const, customId: `u${n}`, installId: `i${n}`, recipient: `token-${n}` });
      const result = await store.settleMessages([
        { id: claimed[0]!.id, owner: 'w', claimedAttempt: 1, state: 'sent', reason: null, errorCode: null, providerKind: 'apns', providerMessageId: 'apns-1', details: { x: 1 }, at: T0 + 10, target: target(1) },
        { id: claimed[1]!.id, owner: 'w', claimedAttempt: 1, state: 'queued', nextAttemptAt: T0 + 60_000, reason: 'APNs answered 503; retrying', errorCode: 'HTTP_503', at: T0 + 10, target: target(2) },
      ]);
      assert.deepEqual(result, { applied: 2, lostLeases: 0 });
      assert.deepEqual(await store.claimMessages('w', T0 + 30_000, 30_000, 10), [], 'the retry is not due yet');
      const [retry] = await store.claimMessages('w', T0 + 60_000, 30_000, 10);
      assert.equal(retry?.id, claimed[1]!.id);
      assert.equal(retry?.attempts, 2);
      const page = await store.listMessages(P, { customId: 'u1', limit: 10 });
      const sent = page.messages[0]!;
      assert.equal(sent.state, 'sent');
      assert.equal(sent.providerMessageId, 'apns-1');
      assert.equal(sent.sentAt, T0 + 10);
      assert.deepEqual(sent.details, { x: 1 });
      assert.deepEqual(sent.history.map((h) => h.state), ['queued', 'sent']);
      const other = (await store.listMessages(P, { customId: 'u2', limit: 10 })).messages[0]!;
      assert.deepEqual(other.history.map((h) => [h.state, h.code]), [['queued', null], ['queued', 'HTTP_503']]);
      const report = await store.getSend(P, 'send_1');
      assert.equal(report?.counts.sent, 1);
      assert.equal(report?.counts.sending, 1);
    }));

  it('applies recipient effects: dead tokens disabled, bounced addresses suppressed, opted-out numbers unsubscribed', () =>
    withStore(async (store) => {
      await store.applyBatch(LOG, 0, 2, (tx) =>
        planBatch(
          tx,
          [
            { seq: 1, record: { kind: 'profile.update', project_id: P, custom_id: 'u1', attributes: { natives: { smsMarketing: 'subscribed' }, custom: {} }, received_at: T0 } },
            { seq: 2, record: { kind: 'installation.upsert', project_id: P, install_id: 'i1', custom_id: 'u1', platform: 'ios', push_token: 'ab', push_enabled: true, received_at: T0 } },
          ],
          new CatalogCache(),
        ),
      );
      await enqueue(store, [message(1), message(2, { channel: 'email', recipient: 'gone@example.com', idempotencyKey: 'k-email' }), message(3, { channel: 'sms', customId: 'u1', recipient: '+14155550123', idempotencyKey: 'k-sms' })]);
      const claimed = await store.claimMessages('w', T0 + 100, 30_000, 10);
      const byRecipient = new Map(claimed.map((m) => [m.recipient, m]));
      await store.settleMessages([
        { id: byRecipient.get('token-1')!.id, owner: 'w', claimedAttempt: 1, state: 'failed', reason: 'Unregistered', errorCode: 'Unregistered', effect: 'disable-token', at: T0, target: { projectId: P, channel: 'push', customId: 'u1', installId: 'i1', recipient: 'token-1' } },
        { id: byRecipient.get('gone@example.com')!.id, owner: 'w', claimedAttempt: 1, state: 'failed', reason: 'bounced', errorCode: 'SMTP_550', effect: 'suppress-address', at: T0, target: { projectId: P, channel: 'email', customId: 'u2', installId: null, recipient: 'gone@example.com' } },
        { id: byRecipient.get('+14155550123')!.id, owner: 'w', claimedAttempt: 1, state: 'failed', reason: 'STOP', errorCode: '21610', effect: 'unsubscribe-sms', at: T0, target: { projectId: P, channel: 'sms', customId: 'u1', installId: null, recipient: '+14155550123' } },
      ]);
      const profile = await store.getProfile(P, 'u1', { eventsLimit: 1 });
      assert.equal(profile?.installations[0]?.pushDisabledReason, 'Unregistered');
      assert.equal(profile?.profile.natives.smsMarketing, 'unsubscribed');
    }));

  it('puts back what a stopping dispatcher holds without counting the attempt', () =>
    withStore(async (store) => {
      await enqueue(store, [message(1), message(2)]);
      await store.claimMessages('w', T0 + 100, 30_000, 10);
      assert.equal(await store.releaseLeases('w', T0 + 101), 2);
      const again = await store.claimMessages('w2', T0 + 102, 30_000, 10);
      assert.deepEqual(again.map((m) => m.attempts), [1, 1]);
    }));

  it('pages a user\'s messages newest first', () =>
    withStore(async (store) => {
      await enqueue(store, Array.from({ length: 7 }, (_, i) => message(i + 1, { customId: 'same' })));
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listMessages(P, { customId: 'same', limit: 3, cursor });
        seen.push(...page.messages.map((m) => m.recipient));
        cursor = page.next ?? undefined;
      } while (cursor);
      assert.deepEqual(seen, [7, 6, 5, 4, 3, 2, 1].map((n) => `token-${n}`));
    }));

  it('lets concurrent dispatchers claim disjoint messages', () =>
    withStore(async (store) => {
      await enqueue(store, Array.from({ length: 60 }, (_, i) => message(i + 1)));
      const claims = await Promise.all(['a', 'b', 'c'].map((w) => store.claimMessages(w, T0 + 1000, 30_000, 25)));
      const ids = claims.flat().map((m) => m.id);
      assert.equal(ids.length, new Set(ids).size, 'no message claimed twice');
      assert.equal(ids.length, 60);
    }));
}
