import { Type } from 'typebox';
import type { MessageEvent, OutboxMessage } from '../storage/outbox-port.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export const MessageView = Type.Object({
  id: Type.String(),
  send_id: Type.String(),
  channel: Type.String(),
  category: Type.String(),
  custom_id: Type.Union([Type.String(), Type.Null()]),
  install_id: Type.Union([Type.String(), Type.Null()]),
  recipient: Type.String({ description: 'The token, address, number or webhook target.' }),
  state: Type.String({ description: 'queued, sending, sent, failed, expired, suppressed, capped or cancelled' }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'Why it is in this state, in words.' }),
  error_code: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer(),
  provider: Type.Union([Type.String(), Type.Null()]),
  provider_message_id: Type.Union([Type.String(), Type.Null()]),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  sent_at: Type.Union([Type.String(), Type.Null()]),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  history: Type.Optional(
    Type.Array(
      Type.Object({ at: Type.String(), state: Type.String(), code: Type.Union([Type.String(), Type.Null()]), detail: Type.Union([Type.String(), Type.Null()]) }),
    ),
  ),
});

export function messageView(m: OutboxMessage & { history?: MessageEvent[] }) {
  return {
    id: m.id,
    send_id: m.sendId,
    channel: m.channel,
    category: m.category,
    custom_id: m.customId,
    install_id: m.installId,
    recipient: m.recipient,
    state: m.state,
    reason: m.reason,
    error_code: m.errorCode,
    attempts: m.attempts,
    provider: m.providerKind,
    provider_message_id: m.providerMessageId,
    details: m.details,
    created_at: iso(m.createdAt)!,
    updated_at: iso(m.updatedAt)!,
    sent_at: iso(m.sentAt),
    expires_at: iso(m.expiresAt),
    ...(m.history ? { history: m.history.map((h) => ({ at: iso(h.at)!, state: h.state, code: h.code, detail: h.detail })) } : {}),
  };
}
