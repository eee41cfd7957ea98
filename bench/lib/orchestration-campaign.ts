/**
 * Part (a) of `npm run bench:orchestration`: a push campaign to every seeded profile (everyone
 * reachable on push), scheduled through the API of a `herald start` child and delivered to the APNs
 * stand-in of a `herald sandbox serve` child. Materialise time comes from the campaign's history
 * (launched → materialized, Herald's clock) and from outside (the schedule request → materialized);
 * delivery time from the schedule request until the stand-in counted every recipient.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SandboxChild } from './delivery-sandbox-child.ts';
import { round } from './herald-child.ts';
import { CpuMeter } from './orchestration-cpu.ts';
import type { OrchestrationHerald } from './orchestration-herald.ts';
import { CAMPAIGN_CONTENT } from './orchestration-raw.ts';
import { customIdOf } from './orchestration-seed.ts';

type Row = Record<string, unknown>;

interface CampaignView {
  id: string;
  status: string;
  history?: { at: string; kind: string; detail: string }[];
}

interface Report {
  targeted: number;
  counts: Record<string, number>;
  reconciled: boolean;
  reasons: unknown[];
}

export interface CampaignOptions {
  recipients: number;
  timeoutS: number;
  progress: (message: string) => void;
}

/**
 * One push to a seeded profile, repeated until the stand-in counts it: after a restart the delivery
 * thread may still hold the previous sandbox's provider settings for up to a control-plane refresh,
 * and the first send opens the APNs connection before the clock starts.
 */
export async function warmUpPush(herald: OrchestrationHerald, sandbox: SandboxChild): Promise<Row> {
  const started = performance.now();
  let attempts = 0;
  while (performance.now() - started < 60_000) {
    const base = await sandbox.count('apns');
    attempts++;
    await herald.json('POST', '/v1/send', { recipients: { custom_ids: [customIdOf(1)] }, channel: 'push', message: { title: 'warm-up', body: 'probe' } }, 201);
    for (let i = 0; i < 50; i++) {
      await sleep(100);
      if ((await sandbox.count('apns')) > base) return { warm_up_s: round((performance.now() - started) / 1000, 2), attempts };
    }
  }
  throw new Error(`a probe push was not delivered within 60 s (${attempts} attempts):\n${herald.output}`);
}

const historyAt = (c: CampaignView, kind: string): number | null => {
  const entry = c.history?.find((h) => h.kind === kind);
  return entry ? Date.parse(entry.at) : null;
};

/** Rate between 10% and 90% of the target on the timeline (the steady part). */
function steadyRate(timeline: [number, number][], target: number): number | null {
  const lo = timeline.find(([, n]) => n >= target * 0.1);
  const hi = timeline.find(([, n]) => n >= target * 0.9);
  if (!lo || !hi || hi[0] <= lo[0]) return null;
  return Math.round((hi[1] - lo[1]) / (hi[0] - lo[0]));
}

/**
 * A campaign still sending at the timeout is cancelled, and its in-flight messages are waited for,
 * so that what runs next (the trigger part) does not queue behind its backlog.
 */
async function cancelAndDrain(herald: OrchestrationHerald, id: string, o: CampaignOptions): Promise<Row> {
  const t0 = performance.now();
  await herald.json('POST', `/v1/campaigns/${id}/cancel`, undefined, 200);
  let report = await herald.json<Report>('GET', `/v1/campaigns/${id}/report`, undefined, 200);
  while ((report.counts.sending ?? 0) + (report.counts.queued ?? 0) > 0 && performance.now() - t0 < 120_000) {
    await sleep(2000);
    report = await herald.json<Report>('GET', `/v1/campaigns/${id}/report`, undefined, 200);
  }
  o.progress(`campaign cancelled after the timeout; in-flight messages settled in ${round((performance.now() - t0) / 1000, 1)} s`);
  return { drain_s: round((performance.now() - t0) / 1000, 1), counts: report.counts };
}

export async function campaignPhase(herald: OrchestrationHerald, sandbox: SandboxChild, o: CampaignOptions): Promise<Row> {
  const created = await herald.json<CampaignView>('POST', '/v1/campaigns', { name: `bench-${Date.now()}`, channel: 'push', content: CAMPAIGN_CONTENT }, 201);
  const base = await sandbox.count('apns');
  let meter = new CpuMeter(sandbox, herald);
  let materialiseCpu: Row | null = null;
  const scheduledWall = Date.now();
  const t0 = performance.now();
  await herald.json('POST', `/v1/campaigns/${created.id}/schedule`, undefined, 200);
  const scheduleAnsweredMs = performance.now() - t0;
  const timeline: [number, number][] = [];
  let view: CampaignView = created;
  let materialisedSeenMs: number | null = null;
  let firstMs: number | null = null;
  let delivered = 0;
  let rssMaxMb = 0;
  let lastView = -Infinity;
  let lastLog = 0;
  for (;;) {
    const now = performance.now() - t0;
    delivered = (await sandbox.count('apns')) - base;
    rssMaxMb = Math.max(rssMaxMb, herald.statusMb('VmRSS'));
    if (delivered > 0 && firstMs === null) firstMs = now;
    if (timeline.length === 0 || now - timeline.at(-1)![0] * 1000 >= 1000 || delivered >= o.recipients) timeline.push([round(now / 1000, 1), delivered]);
    if (materialisedSeenMs === null && now - lastView >= 500) {
      lastView = now;
      view = await herald.json<CampaignView>('GET', `/v1/campaigns/${created.id}`, undefined, 200);
      if (historyAt(view, 'materialized') !== null) {
        materialisedSeenMs = now;
        materialiseCpu = meter.read();
        meter = new CpuMeter(sandbox, herald);
        o.progress(`materialised (seen after ${round(now / 1000, 1)} s)`);
      } else if (view.status === 'cancelled') throw new Error(`the campaign was cancelled: ${JSON.stringify(view.history)}`);
    }
    if (now - lastLog >= 10_000) {
      lastLog = now;
      o.progress(`campaign: ${delivered} of ${o.recipients} delivered after ${round(now / 1000)} s, Herald RSS ${round(herald.statusMb('VmRSS'))} MB`);
    }
    if (delivered >= o.recipients || now > o.timeoutS * 1000) break;
    await sleep(200);
  }
  const doneMs = performance.now() - t0;
  const complete = delivered >= o.recipients;
  const deliveryCpu = meter.read();
  // 'completed' comes at the orchestrator's next look (it polls every second) once every outcome is written.
  for (let i = 0; i < 30; i++) {
    view = await herald.json<CampaignView>('GET', `/v1/campaigns/${created.id}`, undefined, 200);
    if (historyAt(view, 'completed') !== null || !complete) break;
    await sleep(500);
  }
  const report = await herald.json<Report>('GET', `/v1/campaigns/${created.id}/report`, undefined, 200);
  const cancelled = complete ? null : await cancelAndDrain(herald, created.id, o);
  const launched = historyAt(view, 'launched');
  const materialised = historyAt(view, 'materialized');
  const completed = historyAt(view, 'completed');
  const since = (at: number | null, from: number | null): number | null => (at === null || from === null ? null : round((at - from) / 1000, 2));
  const result = {
    benchmark: 'campaign',
    description:
      `A push campaign to everyone reachable (${o.recipients.toLocaleString('en')} seeded profiles, one iOS installation each), content "${CAMPAIGN_CONTENT.title}" ` +
      "(rendered at delivery), scheduled through the API of a `herald start` child, delivered to the APNs stand-in of a `herald sandbox serve` child. " +
      'materialise_seconds = history materialized.at − launched.at; deliver_seconds = schedule request → stand-in counted every recipient.',
    recipients: o.recipients,
    targeted: report.targeted,
    delivered,
    complete,
    materialise_seconds: since(materialised, launched),
    schedule_to_launched_s: since(launched, scheduledWall),
    schedule_to_materialized_s: since(materialised, scheduledWall),
    materialized_seen_s: materialisedSeenMs === null ? null : round(materialisedSeenMs / 1000, 2),
    materialise_rows_per_s: materialised !== null && launched !== null ? Math.round(report.targeted / ((materialised - launched) / 1000)) : null,
    deliver_seconds: complete ? round(doneMs / 1000, 2) : null,
    ...(complete ? {} : { deliver_seconds_at_least: round(doneMs / 1000, 2), timed_out_after_s: o.timeoutS }),
    first_delivery_s: firstMs === null ? null : round(firstMs / 1000, 2),
    delivered_per_s: Math.round(delivered / (doneMs / 1000)),
    steady_delivered_per_s: steadyRate(timeline, o.recipients),
    schedule_to_completed_s: since(completed, scheduledWall),
    schedule_answered_ms: Math.round(scheduleAnsweredMs),
    report_counts: report.counts,
    report_reconciled: report.reconciled,
    report_reasons: report.reasons,
    history: view.history?.map((h) => `${h.at} ${h.kind}: ${h.detail}`),
    ...(cancelled ? { cancelled_after_timeout: cancelled } : {}),
    herald_rss_max_mb: round(rssMaxMb),
    herald_peak_rss_mb: round(herald.statusMb('VmHWM')),
    cpu_until_materialised: materialiseCpu,
    cpu_after_materialised: deliveryCpu,
    timeline_s_delivered: timeline.filter((_, i, all) => i % 5 === 0 || i === all.length - 1),
  };
  return result;
}
