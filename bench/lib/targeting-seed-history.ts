/**
 * Custom audiences and message history (two finished campaign sends) for the targeting seed,
 * written as Herald writes them: audience members by custom_id under a live version; one message
 * per recipient address with its history rows, settled the way the send planner and dispatcher
 * settle them (suppressed with a reason, or sent with sent_at), plus opens and clicks.
 */
import type Database from 'better-sqlite3';
import { messageIdFor } from '../../src/delivery/send-planner.ts';
import { LANES } from '../../src/storage/outbox-port.ts';
import { BulkInsert, Committer } from './targeting-seed-writer.ts';
import { DAY_MS, NOW_MS, PROJECT_ID, Prng, customIdOf } from './targeting-data.ts';

/** Audiences: name → id and the share of profiles in each (50k–300k members at 1M profiles). */
export const AUDIENCES = {
  vip: { id: 'aud_01kbench0000vip00000000000', share: 0.05 },
  newsletter: { id: 'aud_01kbench0000newsletter0000', share: 0.3 },
  churned: { id: 'aud_01kbench0000churned000000', share: 0.15 },
  beta_testers: { id: 'aud_01kbench0000betatesters00', share: 0.08 },
} as const;
export type AudienceName = keyof typeof AUDIENCES;

/** Two campaign sends of ~300k recipients each (30 % of profiles). */
export const SENDS = {
  email: {
    id: 'snd_01kbench0000blackfriday0000',
    campaign: 'cmp_black_friday_teaser',
    template: 'tpl_black_friday_teaser',
    channel: 'email',
    daysAgo: 12,
  },
  push: {
    id: 'snd_01kbench0000wintercoll00000',
    campaign: 'cmp_winter_collection',
    template: 'tpl_winter_collection',
    channel: 'push',
    daysAgo: 5,
  },
} as const;
const RECIPIENT_SHARE = 0.3;

export function seedAudiences(db: Database.Database, profiles: number): Record<string, number> {
  const members = new BulkInsert(db, 'audience_members', ['audience_id', 'version', 'kind', 'member']);
  const commit = new Committer(db, 100_000, () => members.flush());
  const versions = db.prepare(
    'INSERT INTO audience_versions (audience_id, project_id, live_version, member_count, updated_at) VALUES (?, ?, 1, ?, ?)',
  );
  const sizes: Record<string, number> = {};
  let seed = 0x5eed0100;
  for (const [name, { id, share }] of Object.entries(AUDIENCES)) {
    const rng = new Prng(seed++);
    const chosen: string[] = [];
    for (let p = 1; p <= profiles; p++) if (rng.chance(share)) chosen.push(customIdOf(p));
    chosen.sort(); // primary-key order
    for (const member of chosen) {
      members.add(id, 1, 'custom_id', member);
      commit.tick();
    }
    versions.run(id, PROJECT_ID, chosen.length, NOW_MS - 2 * DAY_MS);
    sizes[name] = chosen.length;
  }
  commit.finish();
  return sizes;
}

interface Recipient {
  id: number;
  custom_id: string;
  email: string | null;
  email_marketing: string | null;
  suppressed: number;
}

interface Install {
  install_id: string;
  platform: string;
  push_token: string | null;
  web_push: string | null;
  push_enabled: number;
  push_disabled_reason: string | null;
}

type Settled = { state: 'suppressed'; code: string; reason: string } | { state: 'sent' };

interface Draft {
  key: string;
  customId: string;
  installId: string | null;
  platform: string | null;
  recipient: string;
  webPush: string | null;
  outcome: Settled;
}

function emailDrafts(sendId: string, r: Recipient): Draft[] {
  const base = { customId: r.custom_id, installId: null, platform: null, webPush: null };
  if (!r.email)
    return [
      {
        ...base,
        key: `${sendId}|email|profile:${r.custom_id}`,
        recipient: r.custom_id,
        outcome: { state: 'suppressed', code: 'NO_EMAIL', reason: 'the profile has no email address' },
      },
    ];
  const key = `${sendId}|email|email:${r.email}`;
  if (r.email_marketing !== 'subscribed') {
    const reason = `the profile is not subscribed to marketing email (${r.email_marketing ?? 'no consent recorded'})`;
    return [
      { ...base, key, recipient: r.email, outcome: { state: 'suppressed', code: 'NOT_SUBSCRIBED', reason } },
    ];
  }
  if (r.suppressed)
    return [
      {
        ...base,
        key,
        recipient: r.email,
        outcome: {
          state: 'suppressed',
          code: 'ADDRESS_SUPPRESSED',
          reason: 'the address is suppressed: hard bounce (550 5.1.1 user unknown)',
        },
      },
    ];
  return [{ ...base, key, recipient: r.email, outcome: { state: 'sent' } }];
}

function pushDrafts(sendId: string, r: Recipient, installs: readonly Install[]): Draft[] {
  if (installs.length === 0) {
    const reason = 'the profile has no app installation or browser registered';
    return [
      {
        key: `${sendId}|push|profile:${r.custom_id}`,
        customId: r.custom_id,
        installId: null,
        platform: null,
        recipient: r.custom_id,
        webPush: null,
        outcome: { state: 'suppressed', code: 'NO_PUSH_INSTALLATION', reason },
      },
    ];
  }
  return installs.map((i): Draft => {
    const recipient =
      i.platform === 'web' ? (JSON.parse(i.web_push!) as { endpoint: string }).endpoint : i.push_token!;
    const outcome: Settled = !i.push_enabled
      ? {
          state: 'suppressed',
          code: 'PUSH_NOT_PERMITTED',
          reason: `push notifications are not allowed on installation ${i.install_id}`,
        }
      : i.push_disabled_reason
        ? {
            state: 'suppressed',
            code: 'TOKEN_DISABLED',
            reason: `the provider refused this installation's token before (${i.push_disabled_reason}); waiting for a new one`,
          }
        : { state: 'sent' };
    return {
      key: `${sendId}|push|install:${i.install_id}`,
      customId: r.custom_id,
      installId: i.install_id,
      platform: i.platform,
      recipient,
      webPush: i.platform === 'web' ? i.web_push : null,
      outcome,
    };
  });
}

const CONTENT = {
  email: JSON.stringify({
    subject: 'Black Friday starts Thursday',
    html: '<h1>Early access</h1><p>Up to 50 % off, for members first.</p>',
  }),
  push: JSON.stringify({
    title: 'The winter collection is here',
    body: 'Coats, boots and knits: new in store.',
    deeplink: 'shop://collections/winter',
    priority: 'normal',
  }),
};

/** The two campaign sends, their messages (opened ~20 % of those sent, clicked ~30 % of opened) and history. */
export function seedSends(db: Database.Database): number {
  const messages = new BulkInsert(
    db,
    'messages',
    [
      'id',
      'project_id',
      'send_id',
      'idempotency_key',
      'channel',
      'category',
      'lane',
      'custom_id',
      'install_id',
      'platform',
      'recipient',
      'web_push',
      'content',
      'state',
      'reason',
      'error_code',
      'attempts',
      'next_attempt_at',
      'provider_kind',
      'provider_message_id',
      'created_at',
      'updated_at',
      'sent_at',
      'template_id',
      'campaign_id',
      'opened_at',
      'clicked_at',
    ],
    50,
  );
  const history = new BulkInsert(db, 'message_events', ['message_id', 'at', 'state', 'code', 'detail']);
  const commit = new Committer(db, 50_000, () => {
    messages.flush();
    history.flush();
  });
  const recipients = db.prepare(
    `SELECT p.id, p.custom_id, p.email, p.email_marketing,
       EXISTS (SELECT 1 FROM suppressions s WHERE s.project_id = p.project_id AND s.channel = 'email' AND s.address = p.email) AS suppressed
     FROM profiles p WHERE p.project_id = ? ORDER BY p.id`,
  );
  const installsOf = db.prepare(
    'SELECT install_id, platform, push_token, web_push, push_enabled, push_disabled_reason FROM installations WHERE profile_id = ? ORDER BY created_at, install_id',
  );
  const insertSend = db.prepare(
    'INSERT INTO sends (id, project_id, channel, category, source, summary, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  let total = 0;
  let seed = 0x5eed0200;
  for (const send of Object.values(SENDS)) {
    const rng = new Prng(seed++);
    const createdAt = NOW_MS - send.daysAgo * DAY_MS;
    let count = 0;
    for (const r of recipients.all(PROJECT_ID) as Recipient[]) {
      if (!rng.chance(RECIPIENT_SHARE)) continue;
      count++;
      const drafts =
        send.channel === 'email'
          ? emailDrafts(send.id, r)
          : pushDrafts(send.id, r, installsOf.all(r.id) as Install[]);
      for (const d of drafts) {
        const id = messageIdFor(d.key);
        const sent = d.outcome.state === 'sent';
        const sentAt = sent ? createdAt + rng.int(15 * 60_000) : null;
        const openedAt =
          sentAt !== null && rng.chance(0.2) ? sentAt + Math.floor(rng.next() ** 3 * 3 * DAY_MS) : null;
        const clickedAt = openedAt !== null && rng.chance(0.3) ? openedAt + rng.int(10 * 60_000) : null;
        const settled = d.outcome.state === 'suppressed' ? d.outcome : null;
        messages.add(
          id,
          PROJECT_ID,
          send.id,
          d.key,
          send.channel,
          'marketing',
          LANES.campaign,
          d.customId,
          d.installId,
          d.platform,
          d.recipient,
          d.webPush,
          settled ? '{}' : CONTENT[send.channel],
          d.outcome.state,
          settled?.reason ?? null,
          settled?.code ?? null,
          sent ? 1 : 0,
          createdAt,
          sent
            ? send.channel === 'email'
              ? 'smtp'
              : d.platform === 'ios'
                ? 'apns'
                : d.platform === 'android'
                  ? 'fcm'
                  : 'webpush'
            : null,
          sent ? `${rng.hex(16)}@herald` : null,
          createdAt,
          clickedAt ?? openedAt ?? sentAt ?? createdAt,
          sentAt,
          send.template,
          send.campaign,
          openedAt,
          clickedAt,
        );
        history.add(
          id,
          createdAt,
          sent ? 'queued' : 'suppressed',
          settled?.code ?? null,
          settled?.reason ?? null,
        );
        if (sentAt !== null) history.add(id, sentAt, 'sent', null, null);
        total++;
        commit.tick();
      }
    }
    insertSend.run(
      send.id,
      PROJECT_ID,
      send.channel,
      'marketing',
      `campaign:${send.campaign}`,
      JSON.stringify({ recipients: { custom_ids: count }, template_id: send.template, priority: 'normal' }),
      createdAt,
    );
  }
  commit.finish();
  return total;
}
