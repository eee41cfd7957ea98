import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { ControlPlane } from '../control/control-plane.ts';
import type { TemplateRecord } from '../control/control-store.ts';
import type { ErrorDetail } from '../core/errors.ts';
import { HeraldError } from '../core/errors.ts';
import { timeOrderedId } from '../core/ids.ts';
import type { SendRecord } from '../ingest/records.ts';
import { compileShape, type ShapeCheck } from '../ingest/shape-check.ts';
import type { Problem } from '../profiles/attribute-validation.ts';
import { checkNoNul } from '../profiles/attribute-validation.ts';
import { NATIVE_BY_NAME } from '../profiles/native-attributes.ts';
import type { Channel } from './delivery-model.ts';
import { providersFor } from './providers/registry.ts';
import { MESSAGE_SCHEMAS, SendBody, TemplateBody, toContent } from './send-schemas.ts';
import type { TemplateEngine } from './templates/template-engine.ts';

const sendShape = compileShape(SendBody);
const templateShape = compileShape(TemplateBody);
const messageShapes = Object.fromEntries(Object.entries(MESSAGE_SCHEMAS).map(([c, s]) => [c, compileShape(s)])) as Record<Channel, ShapeCheck>;

/** Which recipient lists each channel takes. */
const RECIPIENT_LISTS: Record<Channel, readonly string[]> = {
  push: ['custom_ids', 'install_ids'],
  email: ['custom_ids', 'emails'],
  sms: ['custom_ids', 'phone_numbers'],
  webhook: ['custom_ids'],
};

function fail(details: ErrorDetail[]): never {
  throw new HeraldError('VALIDATION_FAILED', { details });
}

/** Checks one channel content (shape, then every Liquid template in it) at `path`. */
export function checkContent(channel: Channel, content: unknown, path: string, engine: TemplateEngine, problems: Problem[]): void {
  if (messageShapes[channel].check(content, path, problems)) problems.push(...engine.check(content, path));
  if (channel === 'push' && content && typeof content === 'object') {
    const c = content as Record<string, unknown>;
    if (c.title === undefined && c.body === undefined && c.data === undefined) {
      problems.push({ path, code: 'EMPTY_MESSAGE', message: 'a push needs a title, a body or data' });
    }
  }
}

/** Checks a template body (`POST /v1/templates`): shape, a default variant, language tags, every template. */
export function validateTemplate(body: unknown, engine: TemplateEngine): { name: string; channel: Channel; variants: Record<string, Record<string, unknown>> } {
  const problems: Problem[] = [];
  if (!templateShape.check(body, '', problems)) fail(problems);
  const t = body as { name: string; channel: Channel; variants: Record<string, Record<string, unknown>> };
  if (!t.variants.default) problems.push({ path: '/variants/default', code: 'REQUIRED', message: 'a "default" variant is required' });
  for (const [language, content] of Object.entries(t.variants)) {
    if (language !== 'default') {
      try {
        Intl.getCanonicalLocales(language);
      } catch {
        problems.push({ path: `/variants/${language}`, code: 'INVALID_LANGUAGE', message: 'variants are keyed by language tags like "fr" or "fr-CA"' });
        continue;
      }
    }
    checkContent(t.channel, content, `/variants/${language}`, engine, problems);
  }
  checkNoNul(body, '', problems);
  if (problems.length > 0) fail(problems);
  return t;
}

function checkRecipients(body: SendBody, problems: Problem[]): SendRecord['recipients'] {
  const given = Object.entries(body.recipients).filter(([, v]) => v !== undefined) as [keyof SendRecord['recipients'], string[]][];
  if (given.length !== 1) {
    problems.push({ path: '/recipients', code: 'ONE_RECIPIENT_LIST', message: 'give exactly one of custom_ids, install_ids, emails, phone_numbers' });
    return {};
  }
  const [list, values] = given[0]!;
  if (!RECIPIENT_LISTS[body.channel].includes(list)) {
    problems.push({ path: `/recipients/${list}`, code: 'WRONG_RECIPIENTS_FOR_CHANNEL', message: `${body.channel} takes ${RECIPIENT_LISTS[body.channel].join(' or ')}` });
    return {};
  }
  if (list === 'emails') {
    const check = NATIVE_BY_NAME.get('$email_address')!.check;
    const emails = values.map((v, i) => {
      const r = check(v);
      if (!r.ok) problems.push({ path: `/recipients/emails/${i}`, code: 'INVALID_EMAIL', message: r.message });
      return r.ok ? r.value : v;
    });
    return { emails };
  }
  if (list === 'phone_numbers') {
    const numbers = values.map((v, i) => {
      const phone = parsePhoneNumberFromString(v);
      if (!phone?.isValid()) problems.push({ path: `/recipients/phone_numbers/${i}`, code: 'INVALID_PHONE_NUMBER', message: 'must be a valid phone number in international (E.164) form, like +14155550123' });
      return phone?.number ?? v;
    });
    return { phone_numbers: numbers };
  }
  return { [list]: values };
}

/**
 * Validates `POST /v1/send` into the log record that the applier materialises. Everything that
 * can be known now is checked now — recipients, content and templates, a provider for the channel —
 * so a rejected send queues nothing (I9).
 */
export async function validateSend(body: unknown, projectId: string, control: ControlPlane, engine: TemplateEngine, nowMs: number): Promise<SendRecord> {
  const problems: Problem[] = [];
  if (!sendShape.check(body, '', problems)) fail(problems);
  const send = body as SendBody;
  checkNoNul(body, '', problems);
  const recipients = checkRecipients(send, problems);
  let variants: Record<string, Record<string, unknown>> = {};
  let template: TemplateRecord | null = null;
  if ((send.message === undefined) === (send.template_id === undefined)) {
    problems.push({ path: '/message', code: 'MESSAGE_OR_TEMPLATE', message: 'give either message or template_id' });
  } else if (send.message !== undefined) {
    checkContent(send.channel, send.message, '/message', engine, problems);
    variants = { default: send.message };
  } else {
    template = await control.config.getTemplate(projectId, send.template_id!);
    if (!template) {
      problems.push({ path: '/template_id', code: 'TEMPLATE_NOT_FOUND', message: `no template "${send.template_id}" in this project` });
    } else if (template.channel !== send.channel) {
      problems.push({ path: '/template_id', code: 'TEMPLATE_CHANNEL', message: `the template is for ${template.channel}, not ${send.channel}` });
    }
    if (template) variants = template.variants;
  }
  if (send.data !== undefined && JSON.stringify(send.data).length > 64 * 1024) {
    problems.push({ path: '/data', code: 'TOO_LARGE', message: 'must be at most 64 KiB of JSON' });
  }
  if (problems.length > 0) fail(problems);
  const configured = new Set(control.providers(projectId).filter((p) => !p.disabledReason).map((p) => p.kind));
  if (!providersFor(send.channel).some((p) => configured.has(p.kind))) {
    throw new HeraldError('PROVIDER_NOT_CONFIGURED', {
      message: `No ${send.channel} provider is configured for this project; add one with PUT /v1/providers/{kind}.`,
      details: [{ path: '/channel', code: 'PROVIDER_NOT_CONFIGURED', message: `configure one of: ${providersFor(send.channel).map((p) => p.kind).join(', ')}` }],
    });
  }
  const record: SendRecord = {
    kind: 'send.request',
    project_id: projectId,
    send_id: timeOrderedId('snd', nowMs),
    channel: send.channel,
    category: send.category ?? 'transactional',
    priority: send.priority ?? 'high',
    recipients,
    variants: Object.fromEntries(Object.entries(variants).map(([lang, c]) => [lang, toContent(send.channel, c) as unknown as Record<string, unknown>])),
    received_at: nowMs,
  };
  if (send.ttl_seconds !== undefined) record.ttl_seconds = send.ttl_seconds;
  if (template) record.template_id = template.id;
  if (send.data !== undefined) record.data = send.data;
  return record;
}
