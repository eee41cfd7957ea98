import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunningService, SandboxContext, SandboxService } from '../sandbox-model.ts';
import { applyDelay } from '../sandbox-model.ts';
import { StatusCallbacks } from './sms-sandbox-callback.ts';
import {
  basicAuth,
  failure,
  readMessageForm,
  ruleFailure,
  sendFailure,
  twilioDate,
  type MessageForm,
  type TwilioFailure,
} from './sms-sandbox-api.ts';
import { sandboxSegments } from './sms-sandbox-segments.ts';
import { listen } from '../listen.ts';

const API_VERSION = '2010-04-01';
const CREATE = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
const FETCH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/;
/** Message resources kept for GET; older ones are forgotten, like the recorder's list. */
const KEEP_RESOURCES = 10_000;

type MessageResource = Record<string, string | number | null | Record<string, string>>;

function equalSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The account the request authenticates as, or the 401 Twilio answers (error 20003). */
function authenticate(
  ctx: SandboxContext,
  req: http.IncomingMessage,
  pathSid: string,
): { authToken: string } | TwilioFailure {
  const auth = basicAuth(req.headers.authorization);
  const token = auth ? ctx.trust.get('sms', auth.user)?.authToken : undefined;
  if (!auth || token === undefined || auth.user !== pathSid || !equalSecret(auth.password, token))
    return failure(401, 20003);
  return { authToken: token };
}

function resource(
  accountSid: string,
  form: MessageForm,
  sid: string,
  nowMs: number,
  segments: number,
): MessageResource {
  const viaService = form.from === null;
  return {
    sid,
    account_sid: accountSid,
    api_version: API_VERSION,
    // Twilio: a message sent through a Messaging Service is "accepted" until a sender is chosen.
    status: viaService ? 'accepted' : 'queued',
    direction: 'outbound-api',
    to: form.to,
    from: form.from,
    messaging_service_sid: form.messagingServiceSid,
    body: form.body,
    num_segments: String(viaService ? 0 : segments),
    num_media: '0',
    date_created: twilioDate(nowMs),
    date_updated: twilioDate(nowMs),
    date_sent: null,
    error_code: null,
    error_message: null,
    price: null,
    price_unit: 'USD',
    uri: `/${API_VERSION}/Accounts/${accountSid}/Messages/${sid}.json`,
    subresource_uris: { media: `/${API_VERSION}/Accounts/${accountSid}/Messages/${sid}/Media.json` },
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * A Twilio-shaped Messages API: Basic auth against accounts registered in trust (kind "sms", id =
 * account SID, material `{authToken}`), form fields validated with Twilio's error codes, misbehaviour
 * rules per recipient (`reason` is the Twilio error code), a status callback reporting delivery,
 * and GET of a created message.
 */
export const smsSandbox: SandboxService = {
  kind: 'sms',
  channel: 'sms',
  async start(ctx: SandboxContext): Promise<RunningService> {
    const messages = new Map<string, MessageResource>();
    const callbacks = new StatusCallbacks(ctx.logger);

    async function create(
      req: http.IncomingMessage,
      res: http.ServerResponse,
      accountSid: string,
      authToken: string,
      raw: string,
    ): Promise<void> {
      const type = req.headers['content-type'] ?? '';
      // Twilio reads only form fields; a JSON body has no To, so it fails like one without To.
      const form = readMessageForm(
        new URLSearchParams(type.startsWith('application/x-www-form-urlencoded') ? raw : ''),
      );
      if ('status' in form) return sendFailure(res, form);
      const rule = ctx.behaviors.match('sms', form.to);
      const abort = new AbortController();
      res.on('close', () => abort.abort());
      await applyDelay(rule, abort.signal);
      if (rule?.hang || res.destroyed) return;
      if (rule && (rule.status !== undefined || rule.reason !== undefined))
        return sendFailure(res, ruleFailure(rule));

      const { encoding, segments } = sandboxSegments(form.body);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && k !== 'authorization') headers[k] = v;
      ctx.recorder.record({
        kind: 'sms',
        channel: 'sms',
        to: form.to,
        headers,
        body: {
          from: form.from,
          messaging_service_sid: form.messagingServiceSid,
          body: form.body,
          segments,
          encoding,
          status_callback: form.statusCallback,
          validity_period: form.validityPeriod,
        },
        raw,
      });
      const sid = `SM${randomBytes(16).toString('hex')}`;
      const created = resource(accountSid, form, sid, ctx.clock.now(), segments);
      messages.set(sid, created);
      if (messages.size > KEEP_RESOURCES) messages.delete(messages.keys().next().value!);
      json(res, 201, created);

      if (form.statusCallback) {
        const params = new URLSearchParams({
          MessageSid: sid,
          SmsSid: sid,
          MessageStatus: 'delivered',
          SmsStatus: 'delivered',
          To: form.to,
        });
        if (form.from) params.set('From', form.from);
        if (form.messagingServiceSid) params.set('MessagingServiceSid', form.messagingServiceSid);
        params.set('AccountSid', accountSid);
        params.set('ApiVersion', API_VERSION);
        callbacks.schedule(form.statusCallback, authToken, params, () => {
          const now = twilioDate(ctx.clock.now());
          Object.assign(created, {
            status: 'delivered',
            num_segments: String(segments),
            date_sent: now,
            date_updated: now,
          });
        });
      }
    }

    async function route(req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
      const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
      const createMatch = CREATE.exec(path);
      const fetchMatch = createMatch ? null : FETCH.exec(path);
      const accountSid = decodeURIComponent((createMatch ?? fetchMatch)?.[1] ?? '');
      if (!createMatch && !fetchMatch) return sendFailure(res, failure(404, 20404));
      const account = authenticate(ctx, req, accountSid);
      if ('status' in account) return sendFailure(res, account);
      if (createMatch) {
        if (req.method !== 'POST') return sendFailure(res, failure(405, 20004));
        return create(req, res, accountSid, account.authToken, raw);
      }
      if (req.method !== 'GET') return sendFailure(res, failure(405, 20004));
      const found = messages.get(decodeURIComponent(fetchMatch?.[2] ?? ''));
      if (!found || found.account_sid !== accountSid) return sendFailure(res, failure(404, 20404));
      json(res, 200, found);
    }

    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        route(req, res, Buffer.concat(chunks).toString('utf8')).catch((error: unknown) => {
          ctx.logger.error({ err: (error as Error).message }, 'sms sandbox: request failed');
          if (!res.headersSent) sendFailure(res, failure(500, 20500));
        });
      });
    });
    await listen(server, ctx.portFor('sms'), ctx.host);
    const endpoint = `http://${ctx.host}:${(server.address() as AddressInfo).port}`;
    return {
      endpoint,
      close: () =>
        new Promise<void>((resolve) => {
          callbacks.close();
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  },
};
