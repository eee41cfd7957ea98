import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertRejected, callAs, sleep, uid, type Res } from './support/delivery-client.ts';
import { skipWithoutPg } from './support/services.ts';
import { startTestApp, type Backend, type TestApp } from './support/test-app.ts';

/**
 * Custom audiences (issue 4, part 4) through the real HTTP server: definitions, members by
 * custom_id and install_id through the log, replacing atomically for readers, streamed CSV and
 * NDJSON uploads with progress and line-numbered failures that apply nothing, limits (I9), saved
 * segments that refer to audiences, and tenant isolation (I10).
 */
const backends: { backend: Backend; skip: string | false }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: skipWithoutPg },
];

async function upload(h: TestApp, key: string, audience: string, mode: string, type: string, body: string): Promise<Res> {
  const res = await fetch(`${h.url}/v1/audiences/${encodeURIComponent(audience)}/uploads?mode=${mode}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': type },
    body,
    signal: AbortSignal.timeout(120_000),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

for (const { backend, skip } of backends) {
  describe(`audiences API (${backend})`, { skip }, () => {
    let h: TestApp;
    let key: string;
    let projectId: string;
    before(async () => {
      h = await startTestApp(backend);
      const created = await h.app.control.createProject(`aud-${uid()}`);
      key = created.secretKey.key;
      projectId = created.project.id;
    });
    after(async () => {
      await h?.stop();
    });

    const create = async (name = `list-${uid()}`): Promise<any> => {
      const res = await callAs(h, key, 'POST', '/v1/audiences', { name, description: 'from the test' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    /** Every live member, as `kind:member`, read in pages after `wait_for`. */
    const members = async (id: string, waitFor?: string): Promise<string[]> => {
      const out: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `limit=5000${cursor ? `&cursor=${cursor}` : ''}${waitFor ? `&wait_for=${waitFor}` : ''}`;
        const page = await callAs(h, key, 'GET', `/v1/audiences/${id}/members?${q}`);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        out.push(...page.body.members.map((m: any) => (m.custom_id !== undefined ? `custom_id:${m.custom_id}` : `install_id:${m.install_id}`)));
        cursor = page.body.next_cursor;
      } while (cursor);
      return out;
    };
    const pollImport = async (audience: string, id: string, until: (b: any) => boolean, seen: any[] = []): Promise<any> => {
      for (let i = 0; i < 1200; i++) {
        const res = await callAs(h, key, 'GET', `/v1/audiences/${audience}/uploads/${id}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        seen.push(res.body);
        if (until(res.body)) return res.body;
        await sleep(100);
      }
      throw new Error(`upload ${id} never got there: ${JSON.stringify(seen.at(-1))}`);
    };

    it('creates, lists, reads (by id and name) and deletes an audience; a duplicate name is 409', async () => {
      const a = await create('churned');
      assert.match(a.id, /^aud_/);
      assert.equal(a.member_count, 0);
      assert.equal((await callAs(h, key, 'GET', '/v1/audiences/churned')).body.id, a.id);
      assert.deepEqual((await callAs(h, key, 'GET', '/v1/audiences')).body.audiences.map((x: any) => x.name), ['churned']);
      assertRejected(await callAs(h, key, 'POST', '/v1/audiences', { name: 'churned' }), { status: 409, code: 'AUDIENCE_EXISTS' });
      assertRejected(await callAs(h, key, 'POST', '/v1/audiences', { name: '' }), { path: '/name' });
      assertRejected(await callAs(h, key, 'POST', '/v1/audiences', { name: 'x', colour: 1 }), { path: '/colour', detailCode: 'UNKNOWN_FIELD' });
      const added = await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { custom_ids: ['ana'] } });
      assert.equal(added.status, 202);
      assert.equal((await callAs(h, key, 'GET', `/v1/audiences/${a.id}?wait_for=${added.body.ingest_id}`)).body.member_count, 1);
      assert.equal((await callAs(h, key, 'DELETE', `/v1/audiences/${a.id}`)).status, 204);
      assertRejected(await callAs(h, key, 'GET', `/v1/audiences/${a.id}`), { status: 404, code: 'AUDIENCE_NOT_FOUND' });
      const store = await h.app.cells.get(h.app.control.project(projectId)!.cellId).store();
      const stillThere = async () => (await store.audienceStates(projectId)).some((s) => s.audienceId === a.id);
      for (let i = 0; i < 100 && (await stillThere()); i++) await sleep(100);
      assert.equal(await stillThere(), false, 'its members went with it, through the log');
    });

    it('adds and removes members by custom_id and install_id (≤ 10,000 a call), and replaces them', async () => {
      const a = await create();
      let res = await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { custom_ids: ['ana', 'bob', 'cy'], install_ids: ['ios-1'] } });
      assert.deepEqual([res.status, res.body.accepted], [202, 4]);
      res = await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { custom_ids: ['dee'] }, remove: { custom_ids: ['bob'], install_ids: ['ios-1'] } });
      assert.deepEqual(await members(a.id, res.body.ingest_id), ['custom_id:ana', 'custom_id:cy', 'custom_id:dee']);
      assert.equal((await callAs(h, key, 'GET', `/v1/audiences/${a.id}`)).body.member_count, 3);

      // I9: refused calls change nothing.
      const tooMany = { add: { custom_ids: Array.from({ length: 9_999 }, (_, i) => `m-${i}`) }, remove: { install_ids: ['a', 'b'] } };
      assertRejected(await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, tooMany), { code: 'TOO_MANY_MEMBERS', path: '/remove/install_ids/1' });
      assertRejected(await callAs(h, key, 'PUT', `/v1/audiences/${a.id}/members`, { custom_ids: Array.from({ length: 10_001 }, (_, i) => `m-${i}`) }), { code: 'TOO_MANY_MEMBERS', path: '/custom_ids/10000' });
      assertRejected(await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { custom_ids: ['ok', ''] } }), { path: '/add/custom_ids/1', detailCode: 'INVALID_MEMBER' });
      assertRejected(await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { custom_ids: ['x'] }, remove: { custom_ids: ['x'] } }), { path: '/remove/custom_ids/0', detailCode: 'CONFLICTING_MEMBER' });
      assertRejected(await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { emails: ['a@b'] } }), { path: '/add/emails', detailCode: 'UNKNOWN_FIELD' });
      assertRejected(await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, []), { path: '' });
      assertRejected(await callAs(h, key, 'POST', '/v1/audiences/nope/members', { add: { custom_ids: ['x'] } }), { status: 404, code: 'AUDIENCE_NOT_FOUND' });

      const tenK = Array.from({ length: 10_000 }, (_, i) => `r-${String(i).padStart(5, '0')}`);
      res = await callAs(h, key, 'PUT', `/v1/audiences/${a.id}/members`, { custom_ids: tenK });
      assert.deepEqual([res.status, res.body.accepted], [202, 10_000]);
      assert.deepEqual(await members(a.id, res.body.ingest_id), tenK.map((m) => `custom_id:${m}`), 'the old members are gone, nothing was refused');
      assert.equal((await callAs(h, key, 'GET', `/v1/audiences/${a.id}`)).body.member_count, 10_000);
    });

    it('streams a 200,000-row CSV replace with progress; a reader sees the old set or the new one, never a mix', async () => {
      const a = await create();
      const old = Array.from({ length: 1_000 }, (_, i) => `old-${i}`);
      const put = await callAs(h, key, 'PUT', `/v1/audiences/${a.id}/members`, { custom_ids: old });
      assert.equal((await members(a.id, put.body.ingest_id)).length, 1_000);

      const rows = Array.from({ length: 200_000 }, (_, i) => (i % 10 === 0 ? `web-${i},,"x, y"` : `,new-${i},`));
      const csv = `install_id,custom_id,note\n${rows.join('\n')}\n`;
      const runtime = h.app.cells.get(h.app.control.project(projectId)!.cellId);
      let reading = true;
      const snapshots: { size: number; mixed: boolean }[] = [];
      const reader = (async () => {
        while (reading) {
          const live = await runtime.read((s) => s.audienceMembers(projectId, a.id, { limit: 300_000 }));
          const olds = live.filter((m) => m.member.startsWith('old-')).length;
          snapshots.push({ size: live.length, mixed: olds !== 0 && olds !== live.length });
          await sleep(20);
        }
      })();
      const started = await upload(h, key, a.id, 'replace', 'text/csv', csv);
      assert.equal(started.status, 202, JSON.stringify(started.body));
      assert.match(started.body.id, /^imp_/);
      assert.equal(started.body.state, 'in_progress');
      assert.equal(started.body.rows_read, 200_000);
      assert.equal(started.body.rows_accepted, 200_000);
      const seen: any[] = [];
      const done = await pollImport(a.id, started.body.id, (b) => b.state !== 'in_progress', seen);
      reading = false;
      await reader;
      assert.equal(done.state, 'applied', JSON.stringify(done));
      assert.deepEqual(done.progress, { phase: 'done', rows_logged: 200_000, rows_total: 200_000, percent: 100 });
      assert.ok(seen.every((b, i) => i === 0 || b.progress.rows_logged >= seen[i - 1].progress.rows_logged), 'progress only moves forward');
      assert.ok(snapshots.length > 1, 'the reader ran during the upload');
      assert.deepEqual(snapshots.filter((s) => s.mixed || (s.size !== 1_000 && s.size !== 200_000)), [], 'every snapshot is the old set or the new one');
      assert.equal((await callAs(h, key, 'GET', `/v1/audiences/${a.id}`)).body.member_count, 200_000);
      const live = await runtime.read((s) => s.audienceMembers(projectId, a.id, { limit: 300_000 }));
      assert.equal(live.filter((m) => m.kind === 'install_id').length, 20_000);
      assert.ok(!live.some((m) => m.member.startsWith('old-')));
      const listed = await callAs(h, key, 'GET', `/v1/audiences/${a.id}/uploads`);
      assert.equal(listed.body.uploads[0].id, started.body.id);
    });

    it('a bad row fails the whole upload with line numbers, and nothing is applied', async () => {
      const a = await create();
      const put = await callAs(h, key, 'PUT', `/v1/audiences/${a.id}/members`, { custom_ids: ['keep'] });
      await members(a.id, put.body.ingest_id);
      const lines = ['{"custom_id":"a"}', '{"install_id":"i-1"}', '{"custom_id":7}', '', 'oops', ...Array.from({ length: 300 }, (_, i) => `{"custom_id":"n-${i}"}`), '{"email":"x@y"}'];
      for (const mode of ['replace', 'add']) {
        const res = await upload(h, key, a.id, mode, 'application/x-ndjson', lines.join('\n'));
        assert.equal(res.status, 202, JSON.stringify(res.body));
        assert.equal(res.body.state, 'failed');
        assert.deepEqual(res.body.errors.map((e: any) => e.line), [3, 5, 306]);
        assert.match(res.body.errors[0].message, /line 3 custom_id must be a string/);
        assert.equal(res.body.error_count, 3);
        assert.match(res.body.reason, /nothing was applied/);
        assert.equal((await callAs(h, key, 'GET', `/v1/audiences/${a.id}/uploads/${res.body.id}`)).body.state, 'failed');
      }
      const ok = await upload(h, key, a.id, 'add', 'application/x-ndjson', '{"custom_id":"more"}\n');
      await pollImport(a.id, ok.body.id, (b) => b.state === 'applied');
      assert.deepEqual(await members(a.id), ['custom_id:keep', 'custom_id:more'], 'only the good upload changed the audience');
      const bad = Array.from({ length: 150 }, () => 'x').join('\n');
      const many = await upload(h, key, a.id, 'remove', 'application/x-ndjson', bad);
      assert.equal(many.body.errors.length, 100, 'the first 100 bad rows are listed');
      assert.equal(many.body.error_count, 150);
    });

    it('an upload whose process stopped before its commit is failed with the reason; its staged rows never go live', async () => {
      const a = await create();
      const put = await callAs(h, key, 'PUT', `/v1/audiences/${a.id}/members`, { custom_ids: ['keep'] });
      await members(a.id, put.body.ingest_id);
      // What a process killed half-way through an upload leaves: staged rows in the log, and an upload whose heartbeat stopped.
      const runtime = h.app.cells.get(h.app.control.project(projectId)!.cellId);
      const version = await h.app.control.audiences.nextVersion(projectId, a.id);
      const staged = { kind: 'audience.members', project_id: projectId, audience_id: a.id, version, received_at: Date.now() };
      await runtime.append({ payloads: [JSON.stringify({ ...staged, op: 'stage', custom_ids: ['half-1', 'half-2'] })] });
      const then = Date.now() - 60_000;
      const job = {
        id: `imp_dead${uid()}`, projectId, audienceId: a.id, mode: 'replace', format: 'csv', state: 'in_progress', phase: 'logging', version,
        rowsRead: 10_000, rowsAccepted: 10_000, rowsLogged: 5_000, errorCount: 0, errors: [], reason: null, ingestId: null, createdAt: then, updatedAt: then,
      } as const;
      await h.app.control.audiences.insertImport({ ...job, errors: [] });
      await h.app.control.audiences.updateImport(job.id, { ...job, errors: [] }, then);
      const seen = await callAs(h, key, 'GET', `/v1/audiences/${a.id}/uploads/${job.id}`);
      assert.equal(seen.body.state, 'failed');
      assert.match(seen.body.reason, /Herald stopped .* nothing was applied/);
      // The staged rows were discarded through the log: even a late commit of that version finds none.
      const late = await runtime.append({ payloads: [JSON.stringify({ ...staged, op: 'commit', mode: 'add' })] });
      assert.equal(late.kind, 'appended');
      assert.deepEqual(await members(a.id, `ing_${runtime.cell.id}_${(late as { lastSeq: number }).lastSeq}`), ['custom_id:keep']);
    });

    it('an upload cut off by the client is failed and applies nothing, however many rows arrived', async () => {
      const a = await create();
      const abort = new AbortController();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 50) {
            abort.abort();
            return;
          }
          controller.enqueue(new TextEncoder().encode(`${sent === 0 ? 'custom_id\n' : ''}${Array.from({ length: 1_000 }, (_, i) => `cut-${sent}-${i}`).join('\n')}\n`));
          sent++;
          await sleep(5);
        },
      });
      await assert.rejects(
        fetch(`${h.url}/v1/audiences/${a.id}/uploads?mode=add`, {
          method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, body, signal: abort.signal, duplex: 'half',
        }),
      );
      let upload: any;
      for (let i = 0; i < 100 && upload?.state !== 'failed'; i++) {
        await sleep(100);
        upload = (await callAs(h, key, 'GET', `/v1/audiences/${a.id}/uploads`)).body.uploads[0];
      }
      assert.equal(upload?.state, 'failed', JSON.stringify(upload));
      assert.match(upload.reason, /stopped before its end/);
      assert.ok(upload.rows_read > 0, 'rows had arrived');
      const probe = await callAs(h, key, 'POST', `/v1/audiences/${a.id}/members`, { add: { custom_ids: ['probe'] } });
      assert.deepEqual(await members(a.id, probe.body.ingest_id), ['custom_id:probe']);
    });

    it('refuses an unreadable upload with 400 or 415 and the reason', async () => {
      const a = await create();
      assertRejected(await upload(h, key, a.id, 'add', 'text/csv', 'email\nx@y\n'), { path: '/body', detailCode: 'MISSING_ID_COLUMN' });
      assertRejected(await upload(h, key, a.id, 'add', 'text/csv', ''), { path: '/body', detailCode: 'EMPTY_UPLOAD' });
      assertRejected(await upload(h, key, a.id, 'merge', 'text/csv', 'custom_id\nx\n'), { path: '/query/mode' });
      assertRejected(await upload(h, key, a.id, 'add', 'text/plain', 'custom_id\nx\n'), { status: 415 });
      assertRejected(await upload(h, key, 'nope', 'add', 'text/csv', 'custom_id\nx\n'), { status: 404, code: 'AUDIENCE_NOT_FOUND' });
      assert.deepEqual((await callAs(h, key, 'GET', `/v1/audiences/${a.id}/uploads`)).body.uploads, []);
    });

    it('saved segments refer to audiences by name: unknown is UNKNOWN_AUDIENCE, one in use cannot be deleted', async () => {
      const name = `vip-${uid()}`;
      assertRejected(await callAs(h, key, 'POST', '/v1/segments', { name: `s-${uid()}`, segment: { not: { audience: name } } }), { path: '/segment/not/audience', detailCode: 'UNKNOWN_AUDIENCE' });
      const a = await create(name);
      const seg = await callAs(h, key, 'POST', '/v1/segments', { name: `s-${uid()}`, segment: { not: { audience: name } } });
      assert.equal(seg.status, 201, JSON.stringify(seg.body));
      assertRejected(await callAs(h, key, 'DELETE', `/v1/audiences/${a.id}`), { status: 409, code: 'AUDIENCE_IN_USE' });
      assert.equal((await callAs(h, key, 'DELETE', `/v1/segments/${seg.body.id}`)).status, 204);
      assert.equal((await callAs(h, key, 'DELETE', `/v1/audiences/${name}`)).status, 204);
    });

    it('I10: one project never sees or changes another project’s audience', async () => {
      const a = await create();
      const put = await callAs(h, key, 'PUT', `/v1/audiences/${a.id}/members`, { custom_ids: ['mine'] });
      await members(a.id, put.body.ingest_id);
      const other = (await h.app.control.createProject(`aud-other-${uid()}`)).secretKey.key;
      assert.deepEqual((await callAs(h, other, 'GET', '/v1/audiences')).body.audiences, []);
      for (const [method, path, body] of [
        ['GET', `/v1/audiences/${a.id}`, undefined],
        ['GET', `/v1/audiences/${a.id}/members`, undefined],
        ['POST', `/v1/audiences/${a.id}/members`, { remove: { custom_ids: ['mine'] } }],
        ['PUT', `/v1/audiences/${a.id}/members`, { custom_ids: [] }],
        ['DELETE', `/v1/audiences/${a.id}`, undefined],
      ] as const) {
        assertRejected(await callAs(h, other, method, path, body), { status: 404, code: 'AUDIENCE_NOT_FOUND' });
      }
      assertRejected(await upload(h, other, a.id, 'replace', 'text/csv', 'custom_id\n'), { status: 404 });
      assertRejected(await callAs(h, null, 'GET', '/v1/audiences'), { status: 401 });
      assert.deepEqual(await members(a.id), ['custom_id:mine']);
    });
  });
}
