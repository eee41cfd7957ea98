import { Type, type Static } from 'typebox';

/**
 * Request schemas of the ingestion API. Each is the request's TypeScript type, the shape check that
 * runs on every item (via `typebox/compile`) and the OpenAPI document, at once; the rules a JSON
 * schema cannot say (E.164 numbers, time windows, attribute typing) run after it, in
 * `request-validation.ts`.
 */
export const CustomId = Type.String({
  minLength: 1,
  maxLength: 255,
  description: "The profile's id in your system.",
  examples: ['user-42'],
});

const Attributes = Type.Record(Type.String(), Type.Unknown(), {
  description:
    'Custom attributes (names of a-z, 0-9 and _, up to 64 characters) and the native attributes $email_address, ' +
    '$email_marketing, $phone_number, $sms_marketing, $language, $region and $timezone. Values are strings (ISO 8601 ' +
    'dates and http(s) URLs are typed as such), numbers, booleans, arrays of strings, {"$add": [...]} / ' +
    '{"$remove": [...]} on arrays, or null to delete.',
  examples: [{ $email_address: 'ada@example.com', $timezone: 'Europe/Paris', plan: 'pro', tags: { $add: ['beta'] } }],
});

export const EventInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255, examples: ['added_to_cart'] }),
    time: Type.Optional(
      Type.Union([Type.String(), Type.Integer()], {
        description:
          'When it happened: an ISO 8601 date-time with a zone, or epoch milliseconds. At most 30 days ago and 1 hour ahead. Defaults to now.',
      }),
    ),
    id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'Your id for this event; an event with the same id on the same profile is stored once.',
      }),
    ),
    attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Event properties (JSON).' })),
  },
  { additionalProperties: false },
);

export const ProfileUpdateItem = Type.Object(
  {
    identifiers: Type.Object({ custom_id: CustomId }, { additionalProperties: false }),
    attributes: Type.Optional(Attributes),
    events: Type.Optional(Type.Array(EventInput, { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
export type ProfileUpdateItem = Static<typeof ProfileUpdateItem>;

export const MAX_BATCH_ITEMS = 1000;

export const ProfileUpdateBody = Type.Array(ProfileUpdateItem, {
  maxItems: MAX_BATCH_ITEMS,
  description: 'Up to 1,000 profile updates. Either all are accepted or none is.',
});

export const WebPushInput = Type.Object(
  {
    endpoint: Type.String({ minLength: 1, maxLength: 2048, description: 'The push service URL (https).' }),
    keys: Type.Object(
      {
        p256dh: Type.String({ minLength: 1, maxLength: 256, description: 'base64url P-256 public key' }),
        auth: Type.String({ minLength: 1, maxLength: 64, description: 'base64url 16-byte auth secret' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, description: 'A browser PushSubscription, as returned by PushManager.subscribe().' },
);

export const InstallationBody = Type.Object(
  {
    install_id: Type.String({ minLength: 1, maxLength: 255, description: 'Your stable id for this app install or browser.' }),
    custom_id: Type.Optional(CustomId),
    platform: Type.Union([Type.Literal('ios'), Type.Literal('android'), Type.Literal('web')]),
    push_token: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), Type.Null()], {
        description: 'APNs device token (ios, hex) or FCM registration token (android). null removes it.',
      }),
    ),
    web_push: Type.Optional(Type.Union([WebPushInput, Type.Null()])),
    push_enabled: Type.Optional(Type.Boolean({ description: 'Whether the user allowed push notifications.' })),
    app_version: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()])),
  },
  { additionalProperties: false },
);
export type InstallationBody = Static<typeof InstallationBody>;

export const IngestAccepted = Type.Object({
  accepted: Type.Integer({ description: 'How many items were durably accepted.' }),
  ingest_id: Type.String({
    description: 'Pass as ?wait_for= to GET /v1/profiles/{custom_id} to read your own write.',
  }),
});

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          index: Type.Optional(Type.Integer()),
          path: Type.String(),
          code: Type.String(),
          message: Type.String(),
        }),
      ),
    ),
    request_id: Type.String(),
  }),
});
