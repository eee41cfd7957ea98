import type { Clock } from '../core/clock.ts';
import { coerceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { CellStore } from '../storage/cell-store.ts';
import { LANES } from '../storage/outbox-port.ts';
import { PAUSE_SHIFT_MS, SqlCampaignStore, type CampaignRun } from '../storage/sql-campaigns.ts';
import type { Segment } from '../targeting/segment-model.ts';
import { compileSegment } from '../targeting/segment-sql.ts';
import { list, sql } from '../targeting/sql-fragment.ts';
import { compileContext } from '../targeting/targeting-reads.ts';
import type { CampaignDefinition, CampaignRecord, RecurringDefinition } from './campaign-model.ts';
import { checkSendTime } from './campaign-validation.ts';
import { fanOutInsert, type ZoneOutcome } from './fanout-sql.ts';
import type { MessagingSettings } from './messaging-settings.ts';
import { isValidZone, localToInstant, nextOccurrence, quietHoursRelease } from './schedule.ts';

/** What a run needs from the control plane at launch: templates' contents, saved segments, audience ids. */
export interface CampaignLookups {
  template(projectId: string, ref: string): Promise<{ id: string; channel: string; variants: Record<string, Record<string, unknown>> } | null>;
  savedSegments(projectId: string): Promise<Map<string, Segment>>;
  audienceIds(projectId: string): Promise<Map<string, string>>;
}

/** A run's plan: the campaign resolved at launch, so later edits of templates or segments do not change a run. */
export interface RunPlan {
  projectId: string;
  campaignId: string;
  definition: CampaignDefinition;
  /** Who, as one tree; null: every profile of the project (a webhook campaign with no target), or every reachable one (`reachableOnly`). */
  segment: Segment | null;
  /** Push to everyone reachable: the fan-out joins reachable installations instead of evaluating a segment. */
  reachableOnly?: boolean;
  savedSegments: Record<string, Segment>;
  audiences: Record<string, string>;
  variants: { name: string; weight: number; content: string; templateId: string | null }[];
  settings: MessagingSettings;
}

/** Where a run's fan-out stands. Waves: all profiles at once, or one group of zones at a time (local time). */
export interface RunCursor {
  /** Last profile id done in the current wave, and the wave's last id (fixed when the wave starts). */
  after: number;
  end: number | null;
  /** The current wave's zone keys ('' = profiles with no or an unknown zone: the project's zone); null: every zone. */
  wave: string[] | null;
  /** Zone keys whose wave is done (local time). */
  done: string[];
  /** Messages this wave scheduled so far (the pacing offset). */
  count: number;
}

/** Profile ids per fan-out transaction: small enough not to hold the store's writer for long. */
const ID_SPAN = 5_000;
/** Local-time waves start this long before their moment, so messages are queued when it comes. */
const WAVE_LEAD_MS = 30_000;
/** The last zone on Earth (UTC-12): when its moment has passed, every wave has begun. */
const LATEST_ZONE = 'Etc/GMT+12';
const ZONES_TTL_MS = 60_000;

export const fmtDuration = (ms: number): string => {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
};

export function runIdFor(campaignId: string, occurrenceAt: number): string {
  return `${campaignId}:${occurrenceAt}`;
}

/**
 * Launches due campaigns and moves their runs along, one fan-out batch per transaction (issue 5,
 * parts 1–2): every batch commits its messages with the run's cursor, so a crash resumes exactly
 * where the last commit left it, and the unique (run, channel, recipient) key makes a repeated
 * batch insert nothing. Runs on the cell's orchestrator thread; the store is its only memory.
 */
export class CampaignRunner {
  readonly #zones = new Map<string, { at: number; zones: (string | null)[] }>();

  constructor(
    private readonly o: {
      store: CellStore;
      lookups: CampaignLookups;
      clock: Clock;
      logger: Logger;
      /** Called after messages were queued (wake the delivery thread). */
      onQueued: () => void;
      /** Time spent fanning out per tick, at most, before looking at other campaigns again. */
      sliceMs?: number;
    },
  ) {}

  get #campaigns(): SqlCampaignStore {
    return this.o.store.campaigns;
  }

  /** One round: launch what is due, advance live runs, complete finished ones. True if there is more to do now. */
  async tick(): Promise<boolean> {
    const now = this.o.clock.now();
    for (const c of await this.#campaigns.due(now, 20)) {
      try {
        if (c.kind === 'campaign' && c.status === 'scheduled') await this.#launch(c, now);
        else if (c.kind === 'recurring' && c.status === 'running') await this.#occurrence(c as unknown as CampaignRecord<RecurringDefinition>, now);
      } catch (error) {
        this.o.logger.error({ campaign: c.id, err: coerceError(error).message }, 'campaign launch failed; retrying');
        if (this.o.store.isUnavailableError(error)) throw error;
      }
    }
    let more = false;
    const deadline = performance.now() + (this.o.sliceMs ?? 250);
    for (const run of await this.#campaigns.liveRuns()) {
      if (run.status === 'sending') {
        await this.#completeIfSettled(run);
        continue;
      }
      let current: CampaignRun | null = run;
      while (current && current.status === 'materializing' && performance.now() < deadline) {
        const stepped = await this.#step(current);
        if (!stepped) break;
        current = await this.#campaigns.run(run.id);
      }
      if (current?.status === 'materializing' && performance.now() >= deadline) more = true;
    }
    return more;
  }

  async #launch(c: CampaignRecord, now: number): Promise<void> {
    const def = c.definition;
    const scheduledAt = c.nextRunAt ?? now;
    const late = now - scheduledAt;
    const expected = { version: c.version, from: ['scheduled'] as const };
    if (def.sendTime.type !== 'local' && late > def.lateStart.afterMs && def.lateStart.action === 'cancel') {
      await this.#campaigns.change(c.id, expected, {
        status: 'cancelled',
        nextRunAt: null,
        at: now,
        history: { kind: 'cancelled', detail: `the start was delayed by ${fmtDuration(late)}, more than the late-start limit of ${fmtDuration(def.lateStart.afterMs)}; cancelled, as the campaign asks` },
      });
      return;
    }
    const plan = await this.#plan(c);
    if ('error' in plan) {
      await this.#campaigns.change(c.id, expected, { status: 'cancelled', nextRunAt: null, at: now, history: { kind: 'cancelled', detail: plan.error } });
      return;
    }
    const occurrenceAt = def.sendTime.type === 'local' ? checkFirst(def) : scheduledAt;
    const run: CampaignRun = {
      id: runIdFor(c.id, occurrenceAt),
      projectId: c.projectId,
      campaignId: c.id,
      occurrenceAt,
      status: 'materializing',
      plan: plan as unknown as Record<string, unknown>,
      cursor: { after: 0, end: null, wave: null, done: [], count: 0 } satisfies RunCursor,
      targeted: 0,
      pausedAt: null,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    };
    const detail =
      late > 60_000 && def.sendTime.type !== 'local'
        ? `started ${fmtDuration(late)} after its scheduled time (late-start limit ${fmtDuration(def.lateStart.afterMs)}: ${late > def.lateStart.afterMs ? 'over it; sending late, as the campaign asks' : 'within it'})`
        : 'started';
    await this.#campaigns.change(c.id, expected, { status: 'running', nextRunAt: null, at: now, history: { kind: 'launched', detail, runId: run.id } }, async (tx) => {
      await SqlCampaignStore.insertRun(tx, run);
    });
  }

  /**
   * A recurring automation's occurrence: a run of its own (targeting evaluated now, counts of its
   * own), and the next occurrence. Occurrences missed by more than the late-start limit (Herald or
   * the store was down) are skipped to the next one after now, or sent late, as the automation says.
   */
  async #occurrence(c: CampaignRecord<RecurringDefinition>, now: number): Promise<void> {
    const def = c.definition;
    const occurrenceAt = c.nextRunAt ?? now;
    const settings = await this.#campaigns.settings(c.projectId);
    const zone = def.timezone ?? settings.timezone;
    const bounds = { ...(def.startsAtMs !== null ? { startMs: def.startsAtMs } : {}), ...(def.endsAtMs !== null ? { endMs: def.endsAtMs } : {}) };
    const late = now - occurrenceAt;
    const missed = late > def.lateStart.afterMs;
    const next = nextOccurrence(def.recurrence, zone, missed ? now : occurrenceAt, bounds);
    const expected = { version: c.version, from: ['running'] as const };
    const at = new Date(occurrenceAt).toISOString();
    if (missed && def.lateStart.action === 'cancel') {
      await this.#campaigns.change(c.id, expected, { status: 'running', nextRunAt: next, at: now, history: { kind: 'skipped', detail: `the occurrence of ${at} started ${fmtDuration(late)} late, more than the late-start limit; skipped, as the automation asks` } });
      return;
    }
    const plan = await this.#plan(c);
    if ('error' in plan) {
      await this.#campaigns.change(c.id, expected, { status: 'running', nextRunAt: next, at: now, history: { kind: 'skipped', detail: plan.error.replace(/; cancelled$/, '; occurrence skipped') } });
      return;
    }
    const run = this.#newRun(c, occurrenceAt, plan, now);
    const detail = missed ? `occurrence of ${at}, started ${fmtDuration(late)} late; sending late, as the automation asks` : `occurrence of ${at}`;
    await this.#campaigns.change(c.id, expected, { status: 'running', nextRunAt: next, at: now, history: { kind: 'occurrence', detail, runId: run.id } }, async (tx) => {
      await SqlCampaignStore.insertRun(tx, run);
    });
  }

  #newRun(c: CampaignRecord<CampaignDefinition>, occurrenceAt: number, plan: RunPlan, now: number): CampaignRun {
    return {
      id: runIdFor(c.id, occurrenceAt),
      projectId: c.projectId,
      campaignId: c.id,
      occurrenceAt,
      status: 'materializing',
      plan: plan as unknown as Record<string, unknown>,
      cursor: { after: 0, end: null, wave: null, done: [], count: 0 } satisfies RunCursor,
      targeted: 0,
      pausedAt: null,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    };
  }

  /** Resolves templates, saved segments and audiences now; an error sentence if the campaign can no longer run. */
  async #plan(c: CampaignRecord): Promise<RunPlan | { error: string }> {
    const def = c.definition;
    const variants: RunPlan['variants'] = [];
    for (const v of def.variants) {
      if (v.templateId) {
        const t = await this.o.lookups.template(c.projectId, v.templateId);
        if (!t) return { error: `variant "${v.name}": template "${v.templateId}" no longer exists; cancelled` };
        variants.push({ name: v.name, weight: v.weight, content: JSON.stringify(t.variants), templateId: t.id });
      } else variants.push({ name: v.name, weight: v.weight, content: JSON.stringify(v.content ?? {}), templateId: null });
    }
    const parts: Segment[] = [];
    if (def.target.segment) parts.push(def.target.segment);
    if (def.target.audiences.length > 0) parts.push({ or: def.target.audiences.map((a) => ({ audience: a })) });
    // Everyone reachable on push is the fan-out's inner join itself; a segment for it would build the
    // project's whole reachable set once per batch.
    const reachableOnly = parts.length === 0 && def.channel === 'push';
    const everyone = everyoneReachable(def);
    if (parts.length === 0 && everyone && !reachableOnly) parts.push(everyone);
    const saved = await this.o.lookups.savedSegments(c.projectId);
    return {
      projectId: c.projectId,
      campaignId: c.id,
      definition: def,
      segment: parts.length === 0 ? null : parts.length === 1 ? parts[0]! : { and: parts },
      reachableOnly,
      savedSegments: Object.fromEntries(saved),
      audiences: Object.fromEntries(await this.o.lookups.audienceIds(c.projectId)),
      variants,
      settings: await this.#campaigns.settings(c.projectId),
    };
  }

  /** One fan-out batch (or a wave boundary) of a materialising run; false when it has nothing to do now. */
  async #step(run: CampaignRun): Promise<boolean> {
    const plan = run.plan as unknown as RunPlan;
    const cursor = run.cursor as unknown as RunCursor;
    const def = plan.definition;
    const now = this.o.clock.now();
    if (cursor.end === null || cursor.after >= cursor.end) {
      // Between waves: start the next one, or finish.
      const next = await this.#nextWave(run, plan, cursor, now);
      if (next === 'wait') return false;
      if (next === 'done') {
        await this.#finishMaterializing(run, cursor, now);
        return false;
      }
      const end = await this.#campaigns.maxProfileId();
      // Fresh planner statistics before a large fan-out (PostgreSQL without autovacuum plans it per row otherwise).
      if (cursor.done.length === 0) await this.o.store.optimize();
      await this.#campaigns.fanOutStep(run, null, () => ({ after: 0, end, wave: next, done: cursor.done, count: 0 }), 'materializing', now);
      return true;
    }
    const upTo = Math.min(cursor.after + ID_SPAN, cursor.end);
    const insert = await this.#batch(run, plan, cursor, upTo, now);
    const waveDone = upTo >= cursor.end;
    const inserted = await this.#campaigns.fanOutStep(
      run,
      insert,
      (n) => ({
        after: upTo,
        end: cursor.end,
        wave: waveDone ? null : cursor.wave,
        done: waveDone && cursor.wave ? [...cursor.done, ...cursor.wave] : cursor.done,
        count: cursor.count + n,
      }),
      'materializing',
      now,
    );
    if (inserted && inserted > 0) this.o.onQueued();
    if (waveDone && def.sendTime.type !== 'local') {
      // A one-wave run is done with its single wave.
      const fresh = await this.#campaigns.run(run.id);
      if (fresh?.status === 'materializing') await this.#finishMaterializing(fresh, fresh.cursor as unknown as RunCursor, now);
    }
    return inserted !== null;
  }

  /** Every recipient is in the outbox: the run moves to `sending`, its history saying so in the same transaction. */
  async #finishMaterializing(run: CampaignRun, cursor: RunCursor, now: number): Promise<void> {
    const history = { kind: 'materialized', detail: `all recipients materialised: ${run.targeted} targeted` };
    if ((await this.#campaigns.fanOutStep(run, null, () => ({ ...cursor }), 'sending', now, history)) !== null) await this.o.store.optimize();
  }

  /** The next wave's zone keys, 'wait' until one is due, or 'done'. */
  async #nextWave(run: CampaignRun, plan: RunPlan, cursor: RunCursor, now: number): Promise<string[] | 'wait' | 'done'> {
    const def = plan.definition;
    if (def.sendTime.type !== 'local') return cursor.end === null ? ['*'] : 'done';
    const { date, time } = def.sendTime;
    const keys = new Set<string>();
    for (const z of await this.#zonesOf(run, plan.projectId, now)) keys.add(z !== null && isValidZone(z) ? z : '');
    keys.add('');
    const moments = new Map<string, number>();
    for (const k of keys) if (!cursor.done.includes(k)) moments.set(k, localToInstant(date, time, k === '' ? plan.settings.timezone : k));
    if (moments.size === 0) return now >= localToInstant(date, time, LATEST_ZONE) + WAVE_LEAD_MS ? 'done' : 'wait';
    const first = Math.min(...moments.values());
    if (first > now + WAVE_LEAD_MS) return 'wait';
    return [...moments].filter(([, at]) => at === first).map(([k]) => k);
  }

  async #zonesOf(run: CampaignRun, projectId: string, now: number): Promise<(string | null)[]> {
    const cached = this.#zones.get(run.id);
    if (cached && now - cached.at < ZONES_TTL_MS) return cached.zones;
    const zones = await this.#campaigns.zones(projectId);
    this.#zones.set(run.id, { at: now, zones });
    return zones;
  }

  async #batch(run: CampaignRun, plan: RunPlan, cursor: RunCursor, upTo: number, now: number) {
    const def = plan.definition;
    const store = this.o.store;
    const options = {
      nowMs: now,
      resolveSegment: (ref: string) => plan.savedSegments[ref],
      resolveAudience: (name: string) => plan.audiences[name],
    };
    let where = plan.segment ? compileSegment(plan.segment, store.dialect, await compileContext(store.campaigns.executor, plan.projectId, plan.segment, options)) : sql`TRUE`;
    const zones = new Map<string, ZoneOutcome>();
    let otherZones: ZoneOutcome;
    const outcome = (zone: string, moment: number, perZoneLate: boolean): ZoneOutcome => {
      let dueAt = Math.max(moment, now);
      let verdict: ZoneOutcome['verdict'] = null;
      if (perZoneLate && now - moment > def.lateStart.afterMs && def.lateStart.action === 'cancel') verdict = 'START_LATE';
      const quiet = plan.settings.quietHours;
      if (quiet && def.category === 'marketing' && def.quietHours !== 'ignore') {
        const release = quietHoursRelease(dueAt, zone, quiet);
        if (release !== null) {
          if (def.quietHours === 'defer') dueAt = release;
          else verdict ??= 'QUIET_HOURS';
        }
      }
      return { dueAt, verdict };
    };
    const quietMatters = plan.settings.quietHours !== null && def.category === 'marketing' && def.quietHours !== 'ignore';
    if (def.sendTime.type === 'local') {
      const { date, time } = def.sendTime;
      const wave = cursor.wave ?? [];
      const named = wave.filter((k) => k !== '');
      for (const z of named) zones.set(z, outcome(z, localToInstant(date, time, z), true));
      otherZones = outcome(plan.settings.timezone, localToInstant(date, time, plan.settings.timezone), true);
      const known = (await this.#zonesOf(run, plan.projectId, now)).filter((z): z is string => z !== null && isValidZone(z));
      const parts = [];
      if (named.length > 0) parts.push(sql`p.timezone IN ${list(named)}`);
      if (wave.includes('')) parts.push(known.length > 0 ? sql`(p.timezone IS NULL OR p.timezone NOT IN ${list(known)})` : sql`TRUE`);
      where = sql`${where} AND (${parts.length === 2 ? sql`${parts[0]} OR ${parts[1]}` : parts[0]!})`;
    } else {
      if (quietMatters) for (const z of await this.#zonesOf(run, plan.projectId, now)) if (z !== null && isValidZone(z)) zones.set(z, outcome(z, run.occurrenceAt, false));
      otherZones = outcome(plan.settings.timezone, run.occurrenceAt, false);
    }
    return fanOutInsert({
      dialect: store.dialect,
      runId: run.id,
      campaignId: run.campaignId,
      automationId: null,
      projectId: plan.projectId,
      channel: def.channel,
      category: def.category,
      lane: def.category === 'transactional' ? LANES.transactional : LANES.campaign,
      where,
      afterId: cursor.after,
      upToId: upTo,
      reachableOnly: plan.reachableOnly ?? false,
      platforms: def.platforms,
      variants: plan.variants,
      controlPercent: def.controlPercent,
      zones,
      otherZones,
      pacing: def.ratePerMinute ? { perMinute: def.ratePerMinute, offset: cursor.count } : null,
      expiresAfterMs: def.expiresAfterMs,
      caps: def.category === 'marketing' ? plan.settings.caps.filter((c) => c.channel === def.channel) : [],
      cooldown: 'cooldownMs' in def && typeof def.cooldownMs === 'number' ? { windowMs: def.cooldownMs } : null,
      render: JSON.stringify(def.channel === 'push' ? { priority: def.priority } : {}),
      nowMs: now,
    });
  }

  async #completeIfSettled(run: CampaignRun): Promise<void> {
    if (await this.#campaigns.runHasLiveMessages(run.id)) return;
    const now = this.o.clock.now();
    const c = await this.#campaigns.byId(run.campaignId);
    const detail = `every message settled: ${run.targeted} targeted`;
    const lastOfRecurring = c?.kind === 'recurring' && c.status === 'running' && c.nextRunAt === null && (await this.#campaigns.liveRuns()).every((r) => r.id === run.id || r.campaignId !== c.id);
    if (c && (c.kind === 'campaign' || lastOfRecurring) && c.status === 'running') {
      await this.#campaigns.change(c.id, { version: c.version, from: ['running'] }, { status: 'completed', nextRunAt: null, at: now, history: { kind: 'completed', detail, runId: run.id } }, async (tx) => {
        await this.#campaigns.setRunStatus(tx, run.id, 'completed', now, { completed: true });
      });
    } else {
      await this.#campaigns.executor.transaction(async (tx) => {
        await this.#campaigns.setRunStatus(tx, run.id, 'completed', now, { completed: true });
        await SqlCampaignStore.addHistoryIn(tx, run.campaignId, run.id, now, 'completed', detail);
      });
    }
  }
}

function checkFirst(def: CampaignDefinition): number {
  const first = checkSendTime(def.sendTime, Number.NEGATIVE_INFINITY);
  return first.ok ? first.firstAt : 0;
}

/** "Everyone reachable" on the campaign's channel (and platforms). */
export function everyoneReachable(def: CampaignDefinition): Segment | null {
  if (def.channel === 'webhook') return null;
  if (def.channel === 'push' && def.platforms) return { or: def.platforms.map((platform) => ({ reachable: 'push' as const, platform })) };
  return { reachable: def.channel };
}

/**
 * Pause, resume and cancel: the campaign's status, its runs and their queued messages change in one
 * transaction, with the runs locked so that no fan-out step commits in between. A paused campaign's
 * runs keep their status (the runner skips them) and their queued messages are held (never due);
 * resuming shifts them by the pause's length, so a paced schedule keeps its spacing.
 */
export const CampaignActions = {
  pause(store: SqlCampaignStore, c: CampaignRecord, now: number): Promise<boolean> {
    return store.change(c.id, { version: c.version, from: ['running'] }, { status: 'paused', nextRunAt: null, at: now, history: { kind: 'paused', detail: 'paused by an operator; queued messages are held' } }, async (tx) => {
      for (const r of await store.lockRuns(tx, c.id)) {
        if (r.status !== 'materializing' && r.status !== 'sending') continue;
        await SqlCampaignStore.setPausedAt(tx, r.id, now);
        await SqlCampaignStore.holdMessages(tx, r.id, PAUSE_SHIFT_MS);
      }
    });
  },
  resume(store: SqlCampaignStore, c: CampaignRecord, now: number): Promise<boolean> {
    return store.change(c.id, { version: c.version, from: ['paused'] }, { status: 'running', nextRunAt: null, at: now, history: { kind: 'resumed', detail: 'resumed by an operator; held messages are due again, shifted by the pause' } }, async (tx) => {
      for (const r of await store.lockRuns(tx, c.id)) {
        if (r.pausedAt === null) continue;
        await SqlCampaignStore.setPausedAt(tx, r.id, null);
        await SqlCampaignStore.holdMessages(tx, r.id, -PAUSE_SHIFT_MS + (now - r.pausedAt));
      }
    });
  },
  cancel(store: SqlCampaignStore, c: CampaignRecord, now: number): Promise<boolean> {
    return store.change(
      c.id,
      { version: c.version, from: ['scheduled', 'running', 'paused'] },
      { status: 'cancelled', nextRunAt: null, at: now, history: { kind: 'cancelled', detail: 'cancelled by an operator; messages not yet sent are cancelled' } },
      async (tx) => {
        for (const r of await store.lockRuns(tx, c.id)) {
          if (r.status === 'completed' || r.status === 'cancelled') continue;
          await store.setRunStatus(tx, r.id, 'cancelled', now, { completed: true });
          await SqlCampaignStore.cancelMessages(tx, r.id, 'the campaign was cancelled before this message was sent', now);
        }
      },
    );
  },
};
