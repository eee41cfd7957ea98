import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { AudienceMembersRecord, IngestRecord } from '../ingest/records.ts';
import type { ApplyStats, CellStore } from './cell-store.ts';

type WithStore = (fn: (store: CellStore) => Promise<void>) => Promise<void>;
type ApplyRecords = (store: CellStore, records: IngestRecord[]) => Promise<ApplyStats>;

const P = 'prj_contract';
const A = 'aud_contract';
const T0 = Date.UTC(2026, 5, 1, 12);

const change = (op: AudienceMembersRecord['op'], extra: Partial<AudienceMembersRecord> = {}): AudienceMembersRecord => ({
  kind: 'audience.members',
  project_id: P,
  audience_id: A,
  op,
  received_at: T0,
  ...extra,
});

/** The live members as `kind:member` strings, read in pages to check the cursor too. */
async function live(store: CellStore, projectId = P, audienceId = A): Promise<string[]> {
  const out: string[] = [];
  let after;
  for (;;) {
    const page = await store.audienceMembers(projectId, audienceId, { limit: 2, after });
    out.push(...page.map((m) => `${m.kind}:${m.member}`));
    if (page.length < 2) return out;
    after = page[page.length - 1];
  }
}

const countOf = async (store: CellStore): Promise<number | undefined> =>
  (await store.audienceStates(P)).find((s) => s.audienceId === A)?.memberCount;

/**
 * Custom audiences in the cell store (issue 4): the live set is what readers see; add and remove
 * change it; staged rows stay invisible until their commit swaps or merges them in one transaction.
 */
export function runAudienceContract(withStore: WithStore, applyRecords: ApplyRecords): void {
  it('adds and removes live members by custom_id and install_id, in log order, counting them', () =>
    withStore(async (store) => {
      await applyRecords(store, [
        change('add', { custom_ids: ['ana', 'bob', 'ana'], install_ids: ['ios-1'] }),
        change('remove', { custom_ids: ['bob', 'nobody'] }),
        change('add', { custom_ids: ['bob'] }),
      ]);
      assert.deepEqual(await live(store), ['custom_id:ana', 'custom_id:bob', 'install_id:ios-1']);
      assert.equal(await countOf(store), 3);
      await applyRecords(store, [change('remove', { custom_ids: ['ana'], install_ids: ['ios-1'] })]);
      assert.deepEqual(await live(store), ['custom_id:bob']);
      assert.equal(await countOf(store), 1);
    }));

  it('keeps staged rows invisible until the commit, then replaces the live set whole', () =>
    withStore(async (store) => {
      await applyRecords(store, [change('add', { custom_ids: ['old-1', 'old-2'] })]);
      await applyRecords(store, [change('stage', { version: 7, custom_ids: ['new-1'] }), change('stage', { version: 7, install_ids: ['new-i'] })]);
      assert.deepEqual(await live(store), ['custom_id:old-1', 'custom_id:old-2'], 'a reader still sees the old set');
      assert.equal(await countOf(store), 2);
      await applyRecords(store, [change('commit', { version: 7, mode: 'replace', custom_ids: ['new-2'] })]);
      assert.deepEqual(await live(store), ['custom_id:new-1', 'custom_id:new-2', 'install_id:new-i']);
      assert.equal(await countOf(store), 3);
      // An empty replace empties the audience.
      await applyRecords(store, [change('commit', { version: 8, mode: 'replace' })]);
      assert.deepEqual(await live(store), []);
      assert.equal(await countOf(store), 0);
    }));

  it('merges a staged upload into the live set (add) or out of it (remove) at its commit', () =>
    withStore(async (store) => {
      await applyRecords(store, [change('add', { custom_ids: ['a', 'b'] })]);
      await applyRecords(store, [change('stage', { version: 1, custom_ids: ['b', 'c'] })]);
      assert.deepEqual(await live(store), ['custom_id:a', 'custom_id:b']);
      await applyRecords(store, [change('commit', { version: 1, mode: 'add', custom_ids: ['d'] })]);
      assert.deepEqual(await live(store), ['custom_id:a', 'custom_id:b', 'custom_id:c', 'custom_id:d']);
      assert.equal(await countOf(store), 4);
      await applyRecords(store, [change('stage', { version: 2, custom_ids: ['a', 'zzz'] }), change('commit', { version: 2, mode: 'remove', custom_ids: ['c'] })]);
      assert.deepEqual(await live(store), ['custom_id:b', 'custom_id:d']);
      assert.equal(await countOf(store), 2);
    }));

  it('lets the replace that started last win, and discards abandoned staging rows', () =>
    withStore(async (store) => {
      await applyRecords(store, [
        change('stage', { version: 3, custom_ids: ['first'] }),
        change('commit', { version: 4, mode: 'replace', custom_ids: ['second'] }),
        change('commit', { version: 3, mode: 'replace' }),
      ]);
      assert.deepEqual(await live(store), ['custom_id:second'], 'the older replace committed late and was dropped');
      await applyRecords(store, [change('stage', { version: 5, custom_ids: ['orphan'] }), change('discard', { version: 5 })]);
      await applyRecords(store, [change('commit', { version: 6, mode: 'add' })]);
      assert.deepEqual(await live(store), ['custom_id:second'], 'the discarded rows never become live');
      assert.equal(await countOf(store), 1);
    }));

  it('takes a record appended twice (a retried append) once: a repeated commit changes nothing', () =>
    withStore(async (store) => {
      const commit = change('commit', { version: 9, mode: 'replace', custom_ids: ['a', 'b'] });
      await applyRecords(store, [change('stage', { version: 9, install_ids: ['i'] }), change('stage', { version: 9, install_ids: ['i'] }), commit]);
      await applyRecords(store, [commit, change('add', { custom_ids: ['c'] }), change('add', { custom_ids: ['c'] })]);
      assert.deepEqual(await live(store), ['custom_id:a', 'custom_id:b', 'custom_id:c', 'install_id:i']);
      assert.equal(await countOf(store), 4);
    }));

  it('deletes an audience with all its rows; another project never reads it (I10)', () =>
    withStore(async (store) => {
      await applyRecords(store, [
        change('add', { custom_ids: ['x'] }),
        change('add', { audience_id: 'aud_other', custom_ids: ['y'] }),
      ]);
      assert.deepEqual(await live(store, 'prj_someone_else'), []);
      assert.deepEqual(await store.audienceStates('prj_someone_else'), []);
      await applyRecords(store, [change('delete')]);
      assert.deepEqual(await live(store), []);
      assert.deepEqual((await store.audienceStates(P)).map((s) => s.audienceId), ['aud_other']);
      assert.deepEqual(await live(store, P, 'aud_other'), ['custom_id:y']);
    }));
}
