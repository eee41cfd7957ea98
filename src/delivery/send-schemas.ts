import { Type, type Static, type TSchema } from 'typebox';
import type { Channel, EmailContent, MessageContent, PushContent, SmsContent, WebhookContent } from './delivery-model.ts';

/**
 * The delivery API's request shapes (TypeBox): TypeScript types, shape checks and OpenAPI at once.
 * Every string in a message is a Liquid template (`{{ profile.first_name | default: "there" }}`).
 */
export const PushMessage = Type.Object(
  {
    title: Type.Optional(Type.String({ maxLength: 500 })),
    body: Type.Optional(Type.String({ maxLength: 4000 })),
    deeplink: Type.Optional(Type.String({ maxLength: 2048, description: 'Opened when the notification is tapped.' })),
    data: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), { description: 'Key/value data for the app.' })),
    badge: Type.Optional(Type.Integer({ minimum: 0, maximum: 99_999 })),
    sound: Type.Optional(Type.String({ maxLength: 256 })),
    collapse_key: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Notifications with the same key replace each other.' })),
  },
  { additionalProperties: false },
);

export const EmailMessage = Type.Object(
  {
    subject: Type.String({ minLength: 1, maxLength: 998 }),
    html: Type.String({ minLength: 1, maxLength: 512 * 1024 }),
    text: Type.Optional(Type.String({ maxLength: 512 * 1024, description: 'Generated from the HTML when absent.' })),
    from: Type.Optional(
      Type.Object({ email: Type.String({ minLength: 3, maxLength: 254 }), name: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
    ),
    reply_to: Type.Optional(Type.String({ minLength: 3, maxLength: 254 })),
  },
  { additionalProperties: false },
);

export const SmsMessage = Type.Object({ body: Type.String({ minLength: 1, maxLength: 1600 }) }, { additionalProperties: false });

export const WebhookMessage = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'The event type the receiver sees (default "message").' })),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

export const MESSAGE_SCHEMAS: Readonly<Record<Channel, TSchema>> = {
  push: PushMessage,
  email: EmailMessage,
  sms: SmsMessage,
  webhook: WebhookMessage,
};

const ChannelSchema = Type.Union([Type.Literal('push'), Type.Literal('email'), Type.Literal('sms'), Type.Literal('webhook')]);
const MAX_RECIPIENTS = 10_000;
const ids = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: MAX_RECIPIENTS, description });

export const SendBody = Type.Object(
  {
    recipients: Type.Object(
      {
        custom_ids: Type.Optional(ids('Profiles, by your ids (any channel).')),
        install_ids: Type.Optional(ids('App installs or browsers (push).')),
        emails: Type.Optional(ids('Addresses without a profile (email, transactional).')),
        phone_numbers: Type.Optional(ids('Numbers without a profile (SMS, transactional), E.164.')),
      },
      { additionalProperties: false, description: 'Exactly one list, up to 10,000 recipients.' },
    ),
    channel: ChannelSchema,
    message: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Inline content for the channel (see PushMessage, EmailMessage, SmsMessage, WebhookMessage).' })),
    template_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'A saved template (its id or name) instead of `message`.' })),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Available to the template as `data`.' })),
    category: Type.Optional(Type.Union([Type.Literal('transactional'), Type.Literal('marketing')])),
    priority: Type.Optional(Type.Union([Type.Literal('high'), Type.Literal('normal')])),
    ttl_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_419_200, description: 'Not delivered after this long (it expires, and is counted).' })),
  },
  { additionalProperties: false },
);
export type SendBody = Static<typeof SendBody>;

export const TemplateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    channel: ChannelSchema,
    variants: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()), {
      description: 'Language tag ("fr", "fr-CA") → content for the channel; "default" is required.',
    }),
  },
  { additionalProperties: false },
);
export type TemplateBody = Static<typeof TemplateBody>;

/** API content (snake_case) to the content providers get. */
export function toContent(channel: Channel, message: Record<string, unknown>): MessageContent {
  switch (channel) {
    case 'push': {
      const m = message as Static<typeof PushMessage>;
      const out: PushContent = {};
      if (m.title !== undefined) out.title = m.title;
      if (m.body !== undefined) out.body = m.body;
      if (m.deeplink !== undefined) out.deeplink = m.deeplink;
      if (m.data !== undefined) out.data = m.data;
      if (m.badge !== undefined) out.badge = m.badge;
      if (m.sound !== undefined) out.sound = m.sound;
      if (m.collapse_key !== undefined) out.collapseKey = m.collapse_key;
      return out;
    }
    case 'email': {
      const m = message as Static<typeof EmailMessage>;
      const out: EmailContent = { subject: m.subject, html: m.html };
      if (m.text !== undefined) out.text = m.text;
      if (m.from !== undefined) out.from = m.from.name === undefined ? { email: m.from.email } : { email: m.from.email, name: m.from.name };
      if (m.reply_to !== undefined) out.replyTo = m.reply_to;
      return out;
    }
    case 'sms':
      return { body: (message as unknown as SmsContent).body };
    case 'webhook': {
      const m = message as Static<typeof WebhookMessage>;
      return { type: m.type ?? 'message', data: m.data ?? {} } satisfies WebhookContent;
    }
  }
}
