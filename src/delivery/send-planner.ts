import { messageIdFor } from './message-id.ts';
import type { SendRecord } from '../ingest/records.ts';
import type { InstallationState, ProfileState } from '../profiles/profile-model.ts';
import type { NewMessage, SendRow } from '../storage/outbox-port.ts';
import { LANES } from '../storage/outbox-port.ts';
import type { Channel, MessageContent, WebhookContent } from './delivery-model.ts';
import type { TemplateEngine } from './templates/template-engine.ts';
import { pickVariant } from './templates/template-engine.ts';

/** What materialising a send needs to know, as of the record's place in the log. */
export interface SendLookups {
  profile(customId: string): ProfileState | null;
  installation(installId: string): InstallationState | null;
  installationsOf(customIds: readonly string[]): Promise<Map<string, InstallationState[]>>;
  /** Which of these addresses (emails or numbers) are suppressed on the channel, with why. */
  suppressed(channel: Channel, addresses: readonly string[]): Promise<Map<string, string>>;
}

export { messageIdFor };

/** The variables a template sees about a profile: custom attributes, and natives under plain names. */
export function profileVariables(profile: ProfileState | null, fallbackId: string | null): Record<string, unknown> {
  if (!profile) return fallbackId ? { custom_id: fallbackId } : {};
  const n = profile.natives;
  const natives = {
    email_address: n.email,
    email_marketing: n.emailMarketing,
    phone_number: n.phone,
    sms_marketing: n.smsMarketing,
    language: n.language,
    region: n.region,
    timezone: n.timezone,
  };
  const set = Object.fromEntries(Object.entries(natives).filter(([, v]) => v !== null));
  return { ...profile.attributes, ...set, custom_id: profile.customId };
}

interface Draft {
  key: string;
  customId: string | null;
  installId: string | null;
  platform: InstallationState['platform'] | null;
  recipient: string;
  webPush: InstallationState['webPush'];
  profile: ProfileState | null;
  /** Set when the message is settled already: suppressed or failed, with its reason. */
  settled?: { state: 'suppressed' | 'failed'; code: string; reason: string };
}

/**
 * Turns a send request into one outbox message per recipient and channel address: queued when it
 * can be delivered, otherwise suppressed or failed with a reason a person can read — never a
 * silent drop (issue 3, part 7). Consent: marketing email and SMS need an explicit `subscribed`;
 * push needs the installation's permission; refused tokens and suppressed addresses are skipped.
 */
export async function materializeSend(
  record: SendRecord,
  lookups: SendLookups,
  engine: TemplateEngine,
): Promise<{ send: SendRow; messages: NewMessage[] }> {
  const drafts = await draftsFor(record, lookups);
  const messages: NewMessage[] = [];
  const expiresAt = record.ttl_seconds === undefined ? null : record.received_at + record.ttl_seconds * 1000;
  for (const d of drafts) {
    const id = messageIdFor(d.key);
    let content: MessageContent = {};
    let settled = d.settled;
    if (!settled) {
      const variant = pickVariant(record.variants, d.profile?.natives.language ?? null);
      const rendered = variant
        ? await engine.render(variant.content, {
            profile: profileVariables(d.profile, d.customId),
            data: record.data ?? {},
            message: { id, channel: record.channel },
          })
        : { ok: false as const, reason: 'the template has no variant for this language and no default' };
      if (rendered.ok) content = finishContent(rendered.content, record, d.customId);
      else settled = { state: 'failed', code: 'TEMPLATE_ERROR', reason: rendered.reason };
    }
    messages.push({
      id,
      projectId: record.project_id,
      sendId: record.send_id,
      idempotencyKey: d.key,
      channel: record.channel,
      category: record.category,
      lane: LANES.transactional,
      customId: d.customId,
      installId: d.installId,
      platform: d.platform,
      recipient: d.recipient,
      webPush: d.webPush,
      content,
      state: settled ? settled.state : 'queued',
      reason: settled?.reason ?? null,
      errorCode: settled?.code ?? null,
      expiresAt,
      createdAt: record.received_at,
      templateId: record.template_id ?? null,
    });
  }
  const counts = Object.fromEntries(Object.entries(record.recipients).map(([k, v]) => [k, v.length]));
  return {
    send: {
      id: record.send_id,
      projectId: record.project_id,
      channel: record.channel,
      category: record.category,
      source: 'api',
      summary: {
        recipients: counts,
        ...(record.template_id ? { template_id: record.template_id } : {}),
        priority: record.priority,
        ...(record.ttl_seconds !== undefined ? { ttl_seconds: record.ttl_seconds } : {}),
      },
      createdAt: record.received_at,
    },
    messages,
  };
}

/** Send-wide settings a channel's content carries: push priority; the recipient a webhook is about. */
function finishContent(content: MessageContent, record: SendRecord, customId: string | null): MessageContent {
  if (record.channel === 'push') return { ...content, priority: record.priority };
  if (record.channel === 'webhook') {
    const hook = content as WebhookContent;
    return { type: hook.type, data: { ...hook.data, ...(customId ? { custom_id: customId } : {}) } };
  }
  return content;
}

const unique = (list: readonly string[] | undefined): string[] => [...new Set(list ?? [])];

async function draftsFor(record: SendRecord, lookups: SendLookups): Promise<Draft[]> {
  const key = (suffix: string) => `${record.send_id}|${record.channel}|${suffix}`;
  const drafts: Draft[] = [];
  const none = { installId: null, platform: null, webPush: null } as const;
  const customIds = unique(record.recipients.custom_ids);
  const installsByProfile: Map<string, InstallationState[]> =
    record.channel === 'push' && customIds.length > 0 ? await lookups.installationsOf(customIds) : new Map<string, InstallationState[]>();

  // Addresses first gathered, then checked against suppressions in one lookup.
  const addresses: { draft: Draft; address: string }[] = [];
  const settle = (d: Omit<Draft, 'settled'>, code: string, reason: string, state: 'suppressed' | 'failed' = 'suppressed'): void => {
    drafts.push({ ...d, settled: { state, code, reason } });
  };

  for (const customId of customIds) {
    const profile = lookups.profile(customId);
    const base = { customId, profile, recipient: customId, ...none };
    if (!profile) {
      settle({ ...base, key: key(`profile:${customId}`) }, 'NO_PROFILE', `no profile has custom_id "${customId}"`, 'failed');
      continue;
    }
    switch (record.channel) {
      case 'push':
        pushDrafts(drafts, installsByProfile.get(customId) ?? [], profile, key, settle);
        break;
      case 'email':
      case 'sms': {
        const address = record.channel === 'email' ? profile.natives.email : profile.natives.phone;
        const consent = record.channel === 'email' ? profile.natives.emailMarketing : profile.natives.smsMarketing;
        const what = record.channel === 'email' ? 'email address' : 'phone number';
        if (!address) settle({ ...base, key: key(`profile:${customId}`) }, record.channel === 'email' ? 'NO_EMAIL' : 'NO_PHONE', `the profile has no ${what}`);
        else if (record.category === 'marketing' && consent !== 'subscribed') {
          settle({ ...base, recipient: address, key: key(`${record.channel}:${address}`) }, 'NOT_SUBSCRIBED', `the profile is not subscribed to marketing ${record.channel === 'email' ? 'email' : 'SMS'} (${consent ?? 'no consent recorded'})`);
        } else {
          const draft: Draft = { ...base, recipient: address, key: key(`${record.channel}:${address}`) };
          drafts.push(draft);
          addresses.push({ draft, address });
        }
        break;
      }
      case 'webhook':
        drafts.push({ ...base, key: key(`profile:${customId}`) });
        break;
    }
  }
  for (const installId of unique(record.recipients.install_ids)) {
    const installation = lookups.installation(installId);
    if (!installation) {
      settle({ customId: null, profile: null, recipient: installId, ...none, key: key(`install:${installId}`) }, 'NO_INSTALLATION', `no installation has install_id "${installId}"`, 'failed');
      continue;
    }
    const profile = installation.customId ? lookups.profile(installation.customId) : null;
    pushDrafts(drafts, [installation], profile, key, settle);
  }
  for (const [list, channel] of [[record.recipients.emails, 'email'], [record.recipients.phone_numbers, 'sms']] as const) {
    for (const address of unique(list)) {
      const d: Omit<Draft, 'settled'> = { customId: null, profile: null, recipient: address, ...none, key: key(`${channel}:${address}`) };
      if (record.category === 'marketing') {
        settle(d, 'NO_CONSENT', `marketing ${channel === 'email' ? 'email' : 'SMS'} needs a profile that subscribed; send to its custom_id`);
        continue;
      }
      const draft: Draft = { ...d };
      drafts.push(draft);
      addresses.push({ draft, address });
    }
  }
  if (addresses.length > 0) {
    const suppressed = await lookups.suppressed(record.channel, addresses.map((a) => a.address));
    for (const { draft, address } of addresses) {
      const why = suppressed.get(address);
      if (why) draft.settled = { state: 'suppressed', code: 'ADDRESS_SUPPRESSED', reason: `the ${record.channel === 'email' ? 'address' : 'number'} is suppressed: ${why}` };
    }
  }
  return drafts;
}

function pushDrafts(
  drafts: Draft[],
  installations: readonly InstallationState[],
  profile: ProfileState | null,
  key: (suffix: string) => string,
  settle: (d: Omit<Draft, 'settled'>, code: string, reason: string) => void,
): void {
  // An installation whose token or subscription the provider refused stays visible (as suppressed).
  const usable = installations.filter((i) => (i.platform === 'web' ? i.webPush !== null : i.pushToken !== null) || i.pushDisabledReason !== null);
  if (usable.length === 0) {
    const customId = profile?.customId ?? installations[0]?.customId ?? null;
    settle(
      { customId, profile, recipient: customId ?? installations[0]?.installId ?? '?', installId: installations[0]?.installId ?? null, platform: null, webPush: null, key: key(installations[0] ? `install:${installations[0].installId}` : `profile:${customId}`) },
      'NO_PUSH_INSTALLATION',
      installations.length === 0 ? 'the profile has no app installation or browser registered' : 'no installation has a push token or subscription',
    );
    return;
  }
  for (const i of usable) {
    const d: Omit<Draft, 'settled'> = {
      customId: i.customId ?? profile?.customId ?? null,
      profile,
      recipient: (i.platform === 'web' ? i.webPush?.endpoint : i.pushToken) ?? i.installId,
      installId: i.installId,
      platform: i.platform,
      webPush: i.platform === 'web' ? i.webPush : null,
      key: key(`install:${i.installId}`),
    };
    if (!i.pushEnabled) settle(d, 'PUSH_NOT_PERMITTED', `push notifications are not allowed on installation ${i.installId}`);
    else if (i.pushDisabledReason) settle(d, 'TOKEN_DISABLED', `the provider refused this installation's token before (${i.pushDisabledReason}); waiting for a new one`);
    else drafts.push(d);
  }
}
