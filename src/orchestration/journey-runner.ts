import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { CellStore } from '../storage/cell-store.ts';
import { LANES } from '../storage/outbox-port.ts';
import type { SqlExecutor } from '../storage/sql.ts';
import { JourneySql, type Enrollment, type TriggerEvent } from '../storage/sql-journeys.ts';
import { attributeMatches, evaluateSegment } from '../targeting/evaluate-profile.ts';
import type { Segment } from '../targeting/segment-model.ts';
import { sql } from '../targeting/sql-fragment.ts';
import { eventNeeds, loadProfileFacts } from '../targeting/targeting-reads.ts';
import type { CampaignRecord } from './campaign-model.ts';
import type { CampaignLookups } from './campaign-runner.ts';
import { fanOutInsert } from './fanout-sql.ts';
import { stepIndex, type EventTrigger, type JourneyDefinition, type JourneyStep, type SendStep } from './journey-model.ts';
import { DEFAULT_SETTINGS, type MessagingSettings } from './messaging-settings.ts';
import { isValidZone, nextLocalTime, quietHoursRelease } from './schedule.ts';

const EVENTS_CURSOR = 'events';
const TRIGGER_BATCH = 500;
const TIMER_BATCH = 200;
const SEGMENT_EVERY_MS = 60_000;
/** A journey graph is checked for loops without a wait, so this only guards against a bug. */
const MAX_HOPS = 100;

interface Version {
  version: number;
  definition: JourneyDefinition;
  steps: Map<string, JourneyStep>;
}

interface ActiveJourney {
  record: CampaignRecord<JourneyDefinition>;
  versions: Map<number, Version>;
  latest: Version;
  /** Events received before the journey first went live do not enter anyone. */
  liveSince: number;
}

export function enrollmentIdFor(journeyId: string, customId: string, entryKey: string): string {
  return `enr_${createHash('sha256').update(`${journeyId}\u0000${customId}\u0000${entryKey}`).digest('hex').slice(0, 32)}`;
}

/** Does an applied event match a trigger (name, and every condition on its attributes)? */
export function eventMatches(t: EventTrigger, e: { name: string; attributes: Record<string, unknown> | null }, nowMs: number): boolean {
  if (t.event !== e.name) return false;
  return (t.where ?? []).every((c) => attributeMatches(c, e.attributes?.[c.attribute], nowMs, null));
}

/**
 * Event-triggered journeys (issue 5, part 4). Triggers read the applied events in id order and
 * commit each batch's enrollments, step moves, messages and the read position in ONE transaction,
 * so an event enters a user exactly once across crashes (I4). Timers are rows (`due_at`), so they
 * survive restarts and fire after downtime — late, or expired, as the journey's freshness says (I6).
 */
export class JourneyRunner {
  #active = new Map<string, ActiveJourney>();
  #byProject = new Map<string, ActiveJourney[]>();
  readonly #settings = new Map<string, { at: number; settings: MessagingSettings }>();
  readonly #segmentCheckedAt = new Map<string, number>();
  #queued = false;
  /** Control-plane answers (templates, saved segments, audiences) for one tick. */
  #memo = new Map<string, Promise<unknown>>();

  constructor(
    private readonly o: {
      store: CellStore;
      lookups: CampaignLookups;
      clock: Clock;
      logger: Logger;
      onQueued: () => void;
    },
  ) {}

  /** One round: triggers, due timers, segment entries. True when there is more to do now. */
  async tick(): Promise<boolean> {
    this.#memo.clear();
    await this.#refresh();
    const now = this.o.clock.now();
    // Read outside the transactions below (SQLite: one connection, and a transaction holds it).
    for (const projectId of this.#byProject.keys()) await this.#loadSettings(projectId, now);
    const moreEvents = await this.#triggers(now);
    const moreTimers = this.#active.size > 0 ? await this.#timers(now) : false;
    await this.#segmentEntries(now);
    if (this.#queued) {
      this.#queued = false;
      this.o.onQueued();
    }
    return moreEvents || moreTimers;
  }

  async #refresh(): Promise<void> {
    const records = (await this.o.store.campaigns.active('journey')) as unknown as CampaignRecord<JourneyDefinition>[];
    const next = new Map<string, ActiveJourney>();
    for (const record of records) {
      const known = this.#active.get(record.id);
      if (known && known.record.version === record.version) {
        next.set(record.id, known);
        continue;
      }
      const rows = await JourneySql.versions(this.o.store.campaigns.executor, record.id);
      if (rows.length === 0) continue;
      const versions = new Map(rows.map((r) => [r.version, { version: r.version, definition: r.definition, steps: stepIndex(r.definition) }]));
      next.set(record.id, { record, versions, latest: versions.get(rows[rows.length - 1]!.version)!, liveSince: rows[0]!.createdAt });
    }
    this.#active = next;
    this.#byProject = new Map();
    for (const j of next.values()) this.#byProject.set(j.record.projectId, [...(this.#byProject.get(j.record.projectId) ?? []), j]);
  }

  async #triggers(now: number): Promise<boolean> {
    const db = this.o.store.campaigns.executor;
    return db.transaction(async (tx) => {
      const at = await JourneySql.cursor(tx, EVENTS_CURSOR);
      if (at === null) {
        // First start: triggers begin with the events applied from now on.
        await JourneySql.setCursor(tx, EVENTS_CURSOR, await JourneySql.maxEventId(tx), now);
        return false;
      }
      const events = await JourneySql.eventsAfter(tx, at, TRIGGER_BATCH);
      if (events.length === 0) return false;
      if (this.#active.size > 0) for (const e of events) await this.#onEvent(tx, e, now);
      await JourneySql.setCursor(tx, EVENTS_CURSOR, events[events.length - 1]!.id, now);
      return events.length === TRIGGER_BATCH;
    });
  }

  async #onEvent(tx: SqlExecutor, e: TriggerEvent, now: number): Promise<void> {
    const journeys = this.#byProject.get(e.projectId);
    if (!journeys) return;
    // Exit events first (they cancel what is pending), then waits for this event, then entries.
    for (const en of await JourneySql.liveOf(tx, e.projectId, e.customId)) {
      const j = this.#active.get(en.journeyId);
      const v = j?.versions.get(en.version);
      if (!j || !v) continue;
      if (v.definition.exit_events.some((x) => eventMatches(x, e, now))) {
        if (await JourneySql.move(tx, en, { stepId: en.stepId, state: 'exited', dueAt: null, waitSince: null }, now)) {
          await JourneySql.count(tx, en.journeyId, en.stepId ?? '', 'exited');
          await JourneySql.cancelQueued(tx, en.journeyId, en.customId, `the user left the journey on event "${e.name}"`, now);
        }
        continue;
      }
      const step = en.stepId ? v.steps.get(en.stepId) : undefined;
      if (en.state === 'waiting_event' && step?.type === 'wait_for_event' && j.record.status === 'running' && e.receivedAt >= (en.waitSince ?? 0) && eventMatches(step, e, now)) {
        await JourneySql.count(tx, en.journeyId, step.id, 'event');
        await this.#advance(tx, j, v, en, step.next, now, e.timezone);
      }
    }
    for (const j of journeys) {
      const entry = j.latest.definition.entry;
      if (j.record.status !== 'running' || !('event' in entry) || e.receivedAt < j.liveSince || !eventMatches(entry, e, now)) continue;
      await this.#enroll(tx, j, e.customId, `e:${e.id}`, e.attributes ?? {}, now, e.timezone);
    }
  }

  /** Enters a user (subject to the re-entry policy) and runs the steps up to the first wait. */
  async #enroll(tx: SqlExecutor, j: ActiveJourney, customId: string, uniqueKey: string, data: Record<string, unknown>, now: number, zone: string | null): Promise<void> {
    const policy = j.latest.definition.re_entry;
    if (policy.policy === 'once_per') {
      const last = await JourneySql.lastEntry(tx, j.record.id, customId);
      if (last && now - last.at < policy.windowMs) return;
    }
    const entryKey = policy.policy === 'once' ? 'once' : uniqueKey;
    const en: Enrollment = {
      id: enrollmentIdFor(j.record.id, customId, entryKey),
      projectId: j.record.projectId,
      journeyId: j.record.id,
      version: j.latest.version,
      customId,
      entryKey,
      stepId: null,
      state: 'active',
      dueAt: null,
      waitSince: null,
      data,
      enteredAt: now,
      updatedAt: now,
    };
    if (!(await JourneySql.insertEnrollment(tx, en))) return;
    await this.#advance(tx, j, j.latest, en, j.latest.definition.start, now, zone);
  }

  /** Runs steps from `stepId` until one waits or the user leaves; one compare-and-set move at the end. */
  async #advance(tx: SqlExecutor, j: ActiveJourney, v: Version, en: Enrollment, stepId: string, now: number, knownZone: string | null): Promise<void> {
    let id = stepId;
    let zone = knownZone;
    const zoneOf = async (): Promise<string> => {
      zone ??= await JourneySql.profileZone(tx, en.projectId, en.customId);
      return zone && isValidZone(zone) ? zone : this.#settingsOf(en.projectId).timezone;
    };
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const step = v.steps.get(id);
      if (!step) break;
      await JourneySql.count(tx, en.journeyId, step.id, 'entered');
      switch (step.type) {
        case 'wait': {
          const due = 'durationMs' in step ? now + step.durationMs : nextLocalTime(now + 1, step.until, await zoneOf());
          await JourneySql.move(tx, en, { stepId: step.id, state: 'waiting', dueAt: due, waitSince: null }, now);
          return;
        }
        case 'wait_for_event':
          await JourneySql.move(tx, en, { stepId: step.id, state: 'waiting_event', dueAt: now + step.timeoutMs, waitSince: now }, now);
          return;
        case 'branch': {
          const yes = await this.#evaluate(tx, en, step.condition, now);
          await JourneySql.count(tx, en.journeyId, step.id, yes ? 'then' : 'else');
          id = yes ? step.then : step.else;
          break;
        }
        case 'send':
          await this.#send(tx, en, step, now, await zoneOf());
          if (step.next === undefined) {
            await JourneySql.move(tx, en, { stepId: step.id, state: 'done', dueAt: null, waitSince: null }, now);
            return;
          }
          id = step.next;
          break;
        case 'exit':
          await JourneySql.move(tx, en, { stepId: step.id, state: 'done', dueAt: null, waitSince: null }, now);
          return;
      }
    }
    this.o.logger.error({ journey: j.record.id, step: id }, 'journey: no such step, or too many steps without a wait; the user leaves');
    await JourneySql.move(tx, en, { stepId: id, state: 'done', dueAt: null, waitSince: null }, now);
  }

  /** A branch: the single-profile evaluator over the profile as the transaction sees it. */
  async #evaluate(tx: SqlExecutor, en: Enrollment, condition: Segment, now: number): Promise<boolean> {
    const saved = await this.#lookup(`segments:${en.projectId}`, () => this.o.lookups.savedSegments(en.projectId));
    const audiences = await this.#lookup(`audiences:${en.projectId}`, () => this.o.lookups.audienceIds(en.projectId));
    const ctx = { nowMs: now, resolveSegment: (ref: string) => saved.get(ref), resolveAudience: (name: string) => audiences.get(name) };
    const facts = await loadProfileFacts(tx, en.projectId, en.customId, { events: eventNeeds(condition, now, ctx.resolveSegment) });
    return facts !== null && evaluateSegment(condition, facts, ctx);
  }

  /** Materialises one send step for one user, through the same SQL as a campaign's fan-out (consent, caps, quiet hours). */
  async #send(tx: SqlExecutor, en: Enrollment, step: SendStep, now: number, zone: string): Promise<void> {
    let content: string;
    let templateId: string | null = null;
    if ('template' in step) {
      const t = await this.#lookup(`template:${en.projectId}:${step.template}`, () => this.o.lookups.template(en.projectId, step.template));
      if (!t) {
        await JourneySql.count(tx, en.journeyId, step.id, 'template_missing');
        this.o.logger.warn({ journey: en.journeyId, step: step.id }, 'journey send: the template no longer exists; nothing sent');
        return;
      }
      content = JSON.stringify(t.variants);
      templateId = t.id;
    } else content = JSON.stringify({ default: step.content });
    const settings = this.#settingsOf(en.projectId);
    const marketing = step.category === 'marketing';
    const release = marketing && settings.quietHours ? quietHoursRelease(now, zone, settings.quietHours) : null;
    const insert = fanOutInsert({
      dialect: this.o.store.dialect,
      runId: `${en.journeyId}/${step.id}`,
      keyPrefix: `${en.id}/${step.id}`,
      campaignId: en.journeyId,
      automationId: en.journeyId,
      projectId: en.projectId,
      channel: step.channel,
      category: step.category,
      lane: marketing ? LANES.triggered : LANES.transactional,
      where: sql`p.custom_id = ${en.customId}`,
      afterId: null,
      upToId: null,
      platforms: null,
      variants: [{ name: 'default', weight: 100, content, templateId }],
      controlPercent: 0,
      zones: new Map(),
      otherZones: { dueAt: release ?? now, verdict: null },
      pacing: null,
      expiresAfterMs: null,
      caps: marketing ? settings.caps.filter((c) => c.channel === step.channel) : [],
      render: JSON.stringify({ data: en.data, priority: 'high' }),
      nowMs: now,
    });
    const { changes } = await tx.run(insert.text, insert.params);
    if (changes > 0) this.#queued = true;
    await JourneySql.count(tx, en.journeyId, step.id, 'sent');
  }

  /** Due timers: a wait ends, or a wait for an event times out — late by more than the journey allows: expired. */
  async #timers(now: number): Promise<boolean> {
    const db = this.o.store.campaigns.executor;
    return db.transaction(async (tx) => {
      const due = await JourneySql.due(tx, now, TIMER_BATCH);
      for (const en of due) {
        const j = this.#active.get(en.journeyId);
        const v = j?.versions.get(en.version);
        const step = en.stepId ? v?.steps.get(en.stepId) : undefined;
        if (!j || !v || !step) continue;
        const late = now - (en.dueAt ?? now);
        if (late > v.definition.freshness.lateAfterMs && v.definition.freshness.on_late === 'expire') {
          if (await JourneySql.move(tx, en, { stepId: en.stepId, state: 'expired', dueAt: null, waitSince: null }, now)) await JourneySql.count(tx, en.journeyId, step.id, 'expired');
          continue;
        }
        if (late > v.definition.freshness.lateAfterMs) await JourneySql.count(tx, en.journeyId, step.id, 'late');
        if (step.type === 'wait') await this.#advance(tx, j, v, en, step.next, now, null);
        else if (step.type === 'wait_for_event') {
          await JourneySql.count(tx, en.journeyId, step.id, 'timeout');
          await this.#advance(tx, j, v, en, step.timeout_next, now, null);
        }
      }
      return due.length === TIMER_BATCH;
    });
  }

  /** Segment entries: who is in the segment now and was not at the last look enters (the first look only records). */
  async #segmentEntries(now: number): Promise<void> {
    for (const j of this.#active.values()) {
      const entry = j.latest.definition.entry;
      if (j.record.status !== 'running' || !('segment' in entry)) continue;
      if (now - (this.#segmentCheckedAt.get(j.record.id) ?? 0) < SEGMENT_EVERY_MS) continue;
      this.#segmentCheckedAt.set(j.record.id, now);
      const saved = await this.o.lookups.savedSegments(j.record.projectId);
      const audiences = await this.o.lookups.audienceIds(j.record.projectId);
      const current = new Map<number, string>();
      for await (const batch of this.o.store.matchingProfiles(j.record.projectId, entry.segment, { nowMs: now, resolveSegment: (r) => saved.get(r), resolveAudience: (n) => audiences.get(n) })) {
        for (const p of batch) current.set(p.id, p.customId);
      }
      await this.o.store.campaigns.executor.transaction(async (tx) => {
        const baseline = (await JourneySql.cursor(tx, `segment:${j.record.id}`)) === null;
        const previous = await JourneySql.segmentMembers(tx, j.record.id);
        const added = [...current.keys()].filter((id) => !previous.has(id));
        const removed = [...previous].filter((id) => !current.has(id));
        if (!baseline) for (const id of added) await this.#enroll(tx, j, current.get(id)!, `s:${now}`, {}, now, null);
        await JourneySql.setSegmentMembers(tx, j.record.id, added, removed);
        await JourneySql.setCursor(tx, `segment:${j.record.id}`, now, now);
      });
    }
  }

  #lookup<T>(key: string, load: () => Promise<T>): Promise<T> {
    let hit = this.#memo.get(key) as Promise<T> | undefined;
    if (!hit) this.#memo.set(key, (hit = load()));
    return hit;
  }

  async #loadSettings(projectId: string, now: number): Promise<void> {
    const cached = this.#settings.get(projectId);
    if (cached && now - cached.at < 10_000) return;
    this.#settings.set(projectId, { at: now, settings: await this.o.store.campaigns.settings(projectId) });
  }

  #settingsOf(projectId: string): MessagingSettings {
    return this.#settings.get(projectId)?.settings ?? DEFAULT_SETTINGS;
  }
}
