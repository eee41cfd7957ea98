import type { Channel } from '../delivery/delivery-model.ts';

/**
 * A project's fatigue and timing rules (issue 5, part 5): the zone used for profiles that have
 * none, frequency caps per channel for marketing messages, and quiet hours in each user's zone.
 * Transactional messages bypass caps and quiet hours.
 */
export interface FrequencyCap {
  channel: Channel;
  /** At most this many marketing messages (counted per campaign or journey step, not per device)… */
  max: number;
  /** …per user in any rolling window this long. */
  windowMs: number;
}

export interface MessagingSettings {
  timezone: string;
  caps: FrequencyCap[];
  quietHours: { start: string; end: string } | null;
}

export const DEFAULT_SETTINGS: MessagingSettings = Object.freeze({ timezone: 'UTC', caps: [], quietHours: null });
