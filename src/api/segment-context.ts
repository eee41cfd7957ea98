import type { ProjectRecord, SegmentRecord } from '../control/control-store.ts';
import type { AttributeType } from '../profiles/profile-model.ts';
import type { Segment } from '../targeting/segment-model.ts';
import type { SegmentContext } from '../targeting/segment-validation.ts';
import type { ApiDeps } from './api-deps.ts';

/**
 * What a segment tree is checked against and resolved with: the project's catalog (from its cell's
 * store), its saved segments and its audiences. Shared by segments, estimates, campaigns and journeys.
 */
export async function segmentContextOf(
  deps: ApiDeps,
  project: ProjectRecord,
  selfId?: string,
): Promise<{ ctx: SegmentContext; resolve: (ref: string) => Segment | undefined; audience: (name: string) => string | undefined }> {
  const catalog = await deps.cells.get(project.cellId).read((store) => store.catalog(project.id));
  const saved = await deps.control.config.listSegments(project.id);
  const audiences = await deps.control.audiences.audienceIdsByName(project.id);
  const byRef = new Map<string, SegmentRecord>();
  for (const s of saved) {
    byRef.set(s.id, s);
    byRef.set(s.name, s);
  }
  const ctx: SegmentContext = {
    attributeTypes: new Map(catalog.filter((c) => c.kind === 'attribute').map((c) => [c.name, c.type as AttributeType])),
    knownEvents: new Set(catalog.filter((c) => c.kind === 'event').map((c) => c.name)),
    audienceExists: (name) => audiences.has(name),
    savedSegment: (ref) => {
      const s = byRef.get(ref);
      return s ? { id: s.id, segment: s.definition as Segment } : undefined;
    },
    ...(selfId ? { selfId } : {}),
  };
  return { ctx, resolve: (ref) => byRef.get(ref)?.definition as Segment | undefined, audience: (name) => audiences.get(name) };
}
