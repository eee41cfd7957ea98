import type { ProfileState } from '../profiles/profile-model.ts';
import type { OutboxMessage } from '../storage/outbox-port.ts';
import type { MessageContent, WebhookContent } from './delivery-model.ts';
import { profileVariables } from './send-planner.ts';
import type { TemplateEngine } from './templates/template-engine.ts';
import { pickVariant } from './templates/template-engine.ts';

/** Reads the recipients' profiles for a batch of messages. */
export interface ProfileSource {
  profilesByCustomId(projectId: string, customIds: readonly string[]): Promise<Map<string, ProfileState>>;
}

export type Prepared = { ok: true } | { ok: false; code: string; reason: string };

const LIQUID = /\{\{|\{%/;

/**
 * Campaign and journey messages are materialised with their template, not its output (a million
 * rows written by one `INSERT … SELECT`), and rendered here when claimed: the language variant for
 * the recipient's `$language`, Liquid with the profile as it is now and the step's event data.
 * Content with no Liquid markup skips the engine. Returns, per message, whether it is ready.
 */
export async function renderAtDelivery(messages: readonly OutboxMessage[], profiles: ProfileSource, engine: TemplateEngine): Promise<Map<string, Prepared>> {
  const results = new Map<string, Prepared>();
  const pending = messages.filter((m) => m.render !== null);
  if (pending.length === 0) return results;
  const byProject = new Map<string, Set<string>>();
  for (const m of pending) if (m.customId) (byProject.get(m.projectId) ?? byProject.set(m.projectId, new Set()).get(m.projectId)!).add(m.customId);
  const found = new Map<string, ProfileState>();
  for (const [projectId, ids] of byProject) {
    for (const [id, p] of await profiles.profilesByCustomId(projectId, [...ids])) found.set(`${projectId}\u0000${id}`, p);
  }
  for (const m of pending) {
    const profile = m.customId ? (found.get(`${m.projectId}\u0000${m.customId}`) ?? null) : null;
    const extra = m.render ?? {};
    const variant = pickVariant(m.content as unknown as Record<string, MessageContent>, profile?.natives.language ?? null);
    if (!variant) {
      results.set(m.id, { ok: false, code: 'TEMPLATE_ERROR', reason: 'the content has no variant for this language and no default' });
      continue;
    }
    let content: MessageContent = variant.content;
    if (LIQUID.test(JSON.stringify(content))) {
      const rendered = await engine.render(content, {
        profile: profileVariables(profile, m.customId),
        data: (extra.data as Record<string, unknown> | undefined) ?? {},
        message: { id: m.id, channel: m.channel },
      });
      if (!rendered.ok) {
        results.set(m.id, { ok: false, code: 'TEMPLATE_ERROR', reason: rendered.reason });
        continue;
      }
      content = rendered.content;
    }
    if (m.channel === 'push' && (extra.priority === 'high' || extra.priority === 'normal')) content = { ...content, priority: extra.priority };
    if (m.channel === 'webhook') {
      const hook = content as WebhookContent;
      content = { type: hook.type, data: { ...hook.data, ...(m.customId ? { custom_id: m.customId } : {}) } };
    }
    m.content = content;
    m.render = null;
    results.set(m.id, { ok: true });
  }
  return results;
}
