/**
 * The six segments of `npm run bench:targeting` (issue 4, "Performance"), each as a marketer would
 * build it in Herald's segment language, and each with the hand-written SQL a person would write
 * for the same question against the same SQLite schema: the raw limit. Both must return the same
 * profiles (p.id, p.custom_id) in id order; the benchmark checks it.
 *
 * The hand-written queries know the seeded data's shape (one consistent type per attribute, ISO
 * dates in one format, audience members by custom_id only, no NULL custom_id among the messages
 * they read) and use it, as a person would; Herald's compiler has to be correct for any data.
 */
import type { Segment } from '../../src/targeting/segment-model.ts';
import { AUDIENCES, SENDS } from './targeting-seed-history.ts';
import { DAY_MS, NOW_MS, PROJECT_ID, isoDateTime } from './targeting-data.ts';

export interface RawQuery {
  sql: string;
  params: (string | number)[];
}

export interface BenchSegment {
  name: string;
  /** What a marketer would call it. */
  description: string;
  segment: Segment;
  raw: RawQuery;
}

const since = (days: number): number => NOW_MS - days * DAY_MS;
/** Members of an audience's live version, as a set of custom_ids. */
const audienceMembers = `SELECT member FROM audience_members
       WHERE audience_id = ? AND kind = 'custom_id' AND version = (SELECT live_version FROM audience_versions WHERE audience_id = ?)`;

export const BENCH_SEGMENTS: readonly BenchSegment[] = [
  {
    name: 'attribute_only',
    description:
      'paying customers in French, German or Spanish, LTV ≥ 100, into sports or travel, newsletter opt-in, signed up within a year',
    segment: {
      and: [
        { native: 'language', op: 'in', value: ['fr', 'de', 'es'] },
        { attribute: 'plan', op: 'in', value: ['pro', 'team', 'enterprise'] },
        { attribute: 'lifetime_value', op: 'gte', value: 100 },
        { attribute: 'interests', op: 'contains_any', value: ['sports', 'travel'] },
        { attribute: 'newsletter_opt_in', op: 'eq', value: true },
        { attribute: 'signup_date', op: 'within_last_days', value: 365 },
      ],
    },
    raw: {
      sql: `SELECT id, custom_id FROM profiles
       WHERE project_id = ? AND language IN ('fr', 'de', 'es')
         AND json_extract(attributes, '$.plan') IN ('pro', 'team', 'enterprise')
         AND json_extract(attributes, '$.lifetime_value') >= 100
         AND json_extract(attributes, '$.newsletter_opt_in') = 1
         AND json_extract(attributes, '$.signup_date') BETWEEN ? AND ?
         AND EXISTS (SELECT 1 FROM json_each(attributes, '$.interests') WHERE value IN ('sports', 'travel'))
       ORDER BY id`,
      // ISO date-times in one format compare as text.
      params: [PROJECT_ID, isoDateTime(since(365)), isoDateTime(NOW_MS)],
    },
  },
  {
    name: 'event_count_window',
    description: 'added to cart at least twice in the last 7 days and viewed shoes in the last 30 days',
    segment: {
      and: [
        { event: 'added_to_cart', count: { op: 'gte', value: 2 }, window: { last_days: 7 } },
        {
          event: 'product_viewed',
          where: [{ attribute: 'category', op: 'eq', value: 'shoes' }],
          window: { last_days: 30 },
        },
      ],
    },
    raw: {
      sql: `SELECT p.id, p.custom_id FROM profiles p
       WHERE p.project_id = ?
         AND p.id IN (SELECT profile_id FROM events WHERE name = 'added_to_cart' AND time BETWEEN ? AND ?
                      GROUP BY profile_id HAVING count(*) >= 2)
         AND p.id IN (SELECT profile_id FROM events WHERE name = 'product_viewed' AND time BETWEEN ? AND ?
                        AND json_extract(attributes, '$.category') = 'shoes')
       ORDER BY p.id`,
      params: [PROJECT_ID, since(7), NOW_MS, since(30), NOW_MS],
    },
  },
  {
    name: 'negated_event',
    description:
      'opened the app in the last 30 days, subscribed to marketing email, no purchase in the last 30 days',
    segment: {
      and: [
        { event: 'app_opened', window: { last_days: 30 } },
        { not: { event: 'purchase', window: { last_days: 30 } } },
        { native: 'email_marketing', op: 'eq', value: 'subscribed' },
      ],
    },
    raw: {
      sql: `SELECT p.id, p.custom_id FROM profiles p
       WHERE p.project_id = ? AND p.email_marketing = 'subscribed'
         AND p.id IN (SELECT profile_id FROM events WHERE name = 'app_opened' AND time BETWEEN ? AND ?)
         AND p.id NOT IN (SELECT profile_id FROM events WHERE name = 'purchase' AND time BETWEEN ? AND ?)
       ORDER BY p.id`,
      params: [PROJECT_ID, since(30), NOW_MS, since(30), NOW_MS],
    },
  },
  {
    name: 'audience_intersection',
    description: "in the 'vip' and 'newsletter' audiences, not in 'churned'",
    segment: { and: [{ audience: 'vip' }, { audience: 'newsletter' }, { not: { audience: 'churned' } }] },
    raw: {
      sql: `SELECT p.id, p.custom_id FROM profiles p
       WHERE p.project_id = ?
         AND p.custom_id IN (${audienceMembers})
         AND p.custom_id IN (${audienceMembers})
         AND p.custom_id NOT IN (${audienceMembers})
       ORDER BY p.id`,
      params: [
        PROJECT_ID,
        ...[AUDIENCES.vip.id, AUDIENCES.newsletter.id, AUDIENCES.churned.id].flatMap((id) => [id, id]),
      ],
    },
  },
  {
    name: 'reachability',
    description: 'English or French speakers reachable by iOS push or by marketing email',
    segment: {
      and: [
        { native: 'language', op: 'in', value: ['en', 'fr'] },
        { or: [{ reachable: 'push', platform: 'ios' }, { reachable: 'email' }] },
      ],
    },
    raw: {
      sql: `SELECT p.id, p.custom_id FROM profiles p
       WHERE p.project_id = ? AND p.language IN ('en', 'fr')
         AND (p.id IN (SELECT profile_id FROM installations WHERE project_id = ? AND push_reachable = 1 AND platform = 'ios')
              OR (p.email IS NOT NULL AND p.email_marketing = 'subscribed'
                  AND p.email NOT IN (SELECT address FROM suppressions WHERE project_id = ? AND channel = 'email')))
       ORDER BY p.id`,
      params: [PROJECT_ID, PROJECT_ID, PROJECT_ID],
    },
  },
  {
    name: 'retargeting',
    description:
      'opened the Black Friday teaser email in the last 30 days, did not click the campaign, no purchase in the last 14 days',
    segment: {
      and: [
        { message: 'opened', send: SENDS.email.id, window: { last_days: 30 } },
        { not: { message: 'clicked', campaign: SENDS.email.campaign } },
        { not: { event: 'purchase', window: { last_days: 14 } } },
      ],
    },
    raw: {
      sql: `SELECT p.id, p.custom_id FROM profiles p
       WHERE p.project_id = ?
         AND p.custom_id IN (SELECT custom_id FROM messages WHERE project_id = ? AND send_id = ? AND opened_at BETWEEN ? AND ?)
         AND p.custom_id NOT IN (SELECT custom_id FROM messages
                                 WHERE project_id = ? AND campaign_id = ? AND clicked_at IS NOT NULL AND custom_id IS NOT NULL)
         AND p.id NOT IN (SELECT profile_id FROM events WHERE name = 'purchase' AND time BETWEEN ? AND ?)
       ORDER BY p.id`,
      params: [
        PROJECT_ID,
        PROJECT_ID,
        SENDS.email.id,
        since(30),
        NOW_MS,
        PROJECT_ID,
        SENDS.email.campaign,
        since(14),
        NOW_MS,
      ],
    },
  },
];

/** Audience names the segments use → their ids (what Herald's audience registry would answer). */
export function resolveAudience(name: string): string | undefined {
  return (AUDIENCES as Record<string, { id: string } | undefined>)[name]?.id;
}
