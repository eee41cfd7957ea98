import type { Category, Channel } from '../delivery/delivery-model.ts';
import type { Platform } from '../profiles/profile-model.ts';
import type { Segment } from '../targeting/segment-model.ts';
import { bucketOf } from '../targeting/instant.ts';
import type { Recurrence } from './schedule.ts';

/**
 * Campaigns (issue 5): a one-shot send to a segment, now, at an instant, or at a local time in each
 * recipient's zone, with A/B variants, a control group, a send rate and a freshness policy.
 *
 *   draft ──schedule──▶ scheduled ──(due)──▶ running ──(all settled)──▶ completed
 *                          │                  │  ▲
 *                          │               pause resume
 *                          │                  ▼  │
 *                          └──cancel──▶ cancelled ◀──cancel── paused
 */
export type CampaignStatus = 'draft' | 'scheduled' | 'running' | 'paused' | 'completed' | 'cancelled';
export const CAMPAIGN_STATUSES: readonly CampaignStatus[] = ['draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled'];

/** When a campaign goes out: as soon as it is scheduled, at an instant, or at a wall-clock time in each recipient's zone. */
export type SendTime = { type: 'now' } | { type: 'at'; atMs: number } | { type: 'local'; date: string; time: string };

/** One arm of an A/B test: a saved template, or inline content per language (`default` required). */
export interface CampaignVariant {
  name: string;
  /** Percent of the non-control recipients; the weights of a campaign sum to 100. */
  weight: number;
  templateId: string | null;
  content: Record<string, Record<string, unknown>> | null;
}

export type QuietHoursPolicy = 'defer' | 'drop' | 'ignore';

export interface CampaignDefinition {
  name: string;
  channel: Channel;
  category: Category;
  /** Who: a segment (inline tree; saved segments are referenced inside it) and/or audiences; neither = everyone reachable. */
  target: { segment: Segment | null; audiences: string[] };
  /** Push only: the platforms to reach (null: all). */
  platforms: Platform[] | null;
  sendTime: SendTime;
  /** Messages per minute, spread evenly (null: as fast as the providers take them). */
  ratePerMinute: number | null;
  variants: CampaignVariant[];
  /** Percent of recipients held back as a control group: recorded, never sent. */
  controlPercent: number;
  /** A message not delivered this long after its scheduled time is `expired` (null: never). */
  expiresAfterMs: number | null;
  /** A start delayed (Herald down, store down) by more than `afterMs` is sent late or cancelled, as stated in its history. */
  lateStart: { afterMs: number; action: 'send' | 'cancel' };
  /** What a marketing message scheduled inside the project's quiet hours does. */
  quietHours: QuietHoursPolicy;
  /** Push only: delivery priority. */
  priority: 'high' | 'normal';
}

/**
 * A recurring automation: a campaign sent at each occurrence of a schedule, its targeting
 * evaluated afresh each time, with a per-user cooldown (issue 5, part 3).
 */
export interface RecurringDefinition extends CampaignDefinition {
  recurrence: Recurrence;
  /** The zone the schedule is read in (null: the project's). */
  timezone: string | null;
  startsAtMs: number | null;
  endsAtMs: number | null;
  /** A user who got this automation's message less than this long ago is skipped (capped, COOLDOWN). */
  cooldownMs: number | null;
}

/** A campaign, a recurring automation or a journey: the definition's type follows `kind`. */
export interface CampaignRecord<D = CampaignDefinition> {
  id: string;
  projectId: string;
  kind: 'campaign' | 'recurring' | 'journey';
  name: string;
  status: CampaignStatus;
  definition: D;
  version: number;
  nextRunAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** What a campaign's history records: every state change and decision, with why. */
export interface CampaignHistoryEntry {
  at: number;
  runId: string | null;
  kind: string;
  detail: string;
}

/** The control group's name in reports and on message rows. */
export const CONTROL = 'control';

/**
 * Which arm a recipient falls in: a stable position in [0, 100) from SHA-256 of the campaign id and
 * the custom_id (the same `bucketOf` holdout segments use), the control group first, then the
 * variants by cumulative weight over the rest. The fan-out computes exactly this in SQL
 * (`variantCase`), so this function is the reference the tests hold the SQL to.
 */
export function assignVariant(projectId: string, campaignId: string, customId: string, variants: readonly Pick<CampaignVariant, 'name' | 'weight'>[], controlPercent: number): string {
  return variantForBucket(bucketOf(projectId, customId, campaignId), variants, controlPercent);
}

/** The arm for a bucket in [0, 100): see `assignVariant`. */
export function variantForBucket(bucket: number, variants: readonly Pick<CampaignVariant, 'name' | 'weight'>[], controlPercent: number): string {
  if (bucket < controlPercent) return CONTROL;
  for (const [bound, name] of variantBounds(variants, controlPercent)) if (bucket < bound) return name;
  return variants[variants.length - 1]!.name;
}

/** Upper bucket bounds of each variant after the control group: [bound, name] in order. */
export function variantBounds(variants: readonly Pick<CampaignVariant, 'name' | 'weight'>[], controlPercent: number): [number, string][] {
  const rest = 100 - controlPercent;
  let upTo = controlPercent;
  return variants.map((v, i) => {
    upTo = i === variants.length - 1 ? 100 : upTo + (rest * v.weight) / 100;
    return [upTo, v.name];
  });
}
