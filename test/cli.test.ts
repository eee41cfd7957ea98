import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  eventually,
  freePort,
  killAllHeraldChildren,
  runHerald,
  runHeraldJson,
  startHerald,
  type CliResult,
  type HeraldServer,
} from './support/cli-process.ts';
import { tempDir } from './support/temp.ts';

/**
 * The `herald` CLI as a user runs it: child processes (`node bin/herald.mjs …`) against the same
 * data dir as a running `herald start`, checked from the outside through the CLI and the HTTP API.
 */

interface ApiAnswer {
  status: number;
  body: any;
}

async function call(server: HeraldServer, method: string, urlPath: string, key: string, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(server.url + urlPath, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

function updateProfile(server: HeraldServer, key: string, customId: string, attributes: Record<string, unknown> = {}) {
  return call(server, 'POST', '/v1/profiles/update', key, [{ identifiers: { custom_id: customId }, attributes }]);
}

/** Reads a profile once the given ingest is applied; polls past wait_for's 5 s cap, within a generous deadline. */
function readApplied(server: HeraldServer, key: string, customId: string, ingestId: string): Promise<ApiAnswer> {
  return eventually(`ingest ${ingestId} to be applied`, async () => {
    const read = await call(server, 'GET', `/v1/profiles/${encodeURIComponent(customId)}?wait_for=${ingestId}`, key);
    return read.status === 200 && read.body.consistency?.applied === true ? read : undefined;
  });
}

/** A user mistake: non-zero exit, exactly one line on stderr, no stack trace, nothing on stdout. */
function assertOneLineError(result: CliResult, pattern: RegExp): void {
  const shown = `exit ${result.code}\nstderr: ${result.stderr}\nstdout: ${result.stdout}`;
  assert.equal(result.timedOut, false, shown);
  assert.notEqual(result.code, 0, shown);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr; ${shown}`);
  assert.match(lines[0]!, /^herald: error: \S/, shown);
  assert.match(lines[0]!, pattern, shown);
  assert.doesNotMatch(result.stderr, /\n\s+at |Error:/, shown);
  assert.equal(result.stdout, '', shown);
}

function assertOk(result: CliResult): void {
  assert.equal(result.code, 0, `exit ${result.code}\nstderr: ${result.stderr}\nstdout: ${result.stdout}`);
}

/** The names listed under "Commands:" in a commander help text (without `help`). */
function commandsIn(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((name) => name !== 'help');
}

describe('herald CLI against a running herald start (SQLite)', () => {
  const tmp = tempDir('herald-cli-');
  const dataDir = tmp.dir;
  const dd = ['--data-dir', dataDir];
  let server: HeraldServer;

  before(async () => {
    server = await startHerald(dataDir, { port: await freePort() });
  });
  after(async () => {
    await server?.stop(5_000);
    await killAllHeraldChildren();
    tmp.remove();
  });

  it('starts and prints the demo project keys once; the printed secret key works', async () => {
    assert.match(server.secretKey, /^sk_/);
    assert.match(server.publicKey, /^pk_/);
    assert.match(server.projectId, /^prj_/);
    const write = await updateProfile(server, server.secretKey, 'demo-user', { plan: 'pro' });
    assert.equal(write.status, 202, JSON.stringify(write.body));
    const read = await readApplied(server, server.secretKey, 'demo-user', write.body.ingest_id);
    assert.deepEqual(read.body.attributes, { plan: 'pro' });
  });

  describe('projects', () => {
    let shop: { id: string; name: string; cell: string; secret_key: string; public_key: string };

    it('projects create --json prints id, name, cell and both keys, and the running server accepts the new secret key', async () => {
      shop = await runHeraldJson(['projects', 'create', 'shop', ...dd]);
      assert.deepEqual(Object.keys(shop).sort(), ['cell', 'id', 'name', 'public_key', 'secret_key']);
      assert.match(shop.id, /^prj_/);
      assert.equal(shop.name, 'shop');
      assert.equal(shop.cell, 'c1');
      assert.match(shop.secret_key, /^sk_/);
      assert.match(shop.public_key, /^pk_/);

      const write = await updateProfile(server, shop.secret_key, 'shopper-1', { plan: 'gold' });
      assert.equal(write.status, 202, JSON.stringify(write.body));
      assert.equal(write.body.accepted, 1);
      const read = await readApplied(server, shop.secret_key, 'shopper-1', write.body.ingest_id);
      assert.deepEqual(read.body.attributes, { plan: 'gold' });
      // I10: the new project's data is not the demo project's.
      const fromDemo = await call(server, 'GET', '/v1/profiles/shopper-1', server.secretKey);
      assert.equal(fromDemo.status, 404);

      const install = await call(server, 'POST', '/v1/installations', shop.public_key, {
        install_id: 'web-shop-1',
        custom_id: 'shopper-1',
        platform: 'web',
      });
      assert.equal(install.status, 202, JSON.stringify(install.body));
    });

    it('projects create without --json shows the keys in plain text', async () => {
      const result = await runHerald(['projects', 'create', 'blog', ...dd]);
      assertOk(result);
      assert.match(result.stdout, /Created project "blog" \(prj_\S+\) in cell c1/);
      const secret = /secret key: (sk_\S+)/.exec(result.stdout)?.[1];
      assert.ok(secret, result.stdout);
      const write = await updateProfile(server, secret, 'reader-1');
      assert.equal(write.status, 202);
    });

    it('a duplicate project name is one clear error line and a non-zero exit', async () => {
      const result = await runHerald(['projects', 'create', 'shop', ...dd]);
      assertOneLineError(result, /already exists/);
      const list = await runHeraldJson<{ name: string }[]>(['projects', 'list', ...dd]);
      assert.equal(list.filter((p) => p.name === 'shop').length, 1);
    });

    it('an invalid project name or an unknown cell is one clear error line', async () => {
      const [badName, badCell] = await Promise.all([
        runHerald(['projects', 'create', 'prj_sneaky', ...dd]),
        runHerald(['projects', 'create', 'elsewhere', '--cell', 'c9', ...dd]),
      ]);
      assertOneLineError(badName, /project name/i);
      assertOneLineError(badCell, /c9/);
    });

    it('projects list shows every project, as a table and as JSON', async () => {
      const table = await runHerald(['projects', 'list', ...dd]);
      assertOk(table);
      assert.match(table.stdout, /^ID\s+NAME\s+CELL/m);
      for (const name of ['demo', 'shop', 'blog']) assert.match(table.stdout, new RegExp(`\\s${name}\\s+c1\\s`));
      assert.ok(table.stdout.includes(shop.id));

      const list = await runHeraldJson<{ id: string; name: string; cell: string }[]>(['projects', 'list', ...dd]);
      assert.deepEqual(list.map((p) => p.name).sort(), ['blog', 'demo', 'shop']);
      assert.ok(list.every((p) => p.cell === 'c1'));
      assert.equal(list.find((p) => p.name === 'shop')?.id, shop.id);
      assert.equal(list.find((p) => p.name === 'demo')?.id, server.projectId);
    });

    it('takes the data dir from HERALD_DATA_DIR when --data-dir is not given', async () => {
      const list = await runHeraldJson<{ name: string }[]>(['projects', 'list'], { env: { HERALD_DATA_DIR: dataDir } });
      assert.deepEqual(list.map((p) => p.name).sort(), ['blog', 'demo', 'shop']);
    });
  });

  describe('keys', () => {
    let project: { id: string; secret_key: string };
    before(async () => {
      project = await runHeraldJson(['projects', 'create', 'keyring', ...dd]);
    });

    it('keys create --json makes secret and public keys that the running server accepts', async () => {
      const secret = await runHeraldJson(['keys', 'create', '--project', 'keyring', '--name', 'backend', ...dd]);
      assert.match(secret.id, /^key_/);
      assert.equal(secret.project, project.id);
      assert.equal(secret.kind, 'secret');
      assert.match(secret.key, /^sk_/);
      const pub = await runHeraldJson(['keys', 'create', '--project', project.id, '--public', ...dd]);
      assert.equal(pub.kind, 'public');
      assert.match(pub.key, /^pk_/);

      assert.equal((await updateProfile(server, secret.key, 'k-user')).status, 202);
      const install = await call(server, 'POST', '/v1/installations', pub.key, { install_id: 'and-1', custom_id: 'k-user', platform: 'android' });
      assert.equal(install.status, 202, JSON.stringify(install.body));
      // A public key stays a public key: it cannot read profiles.
      assert.equal((await call(server, 'GET', '/v1/profiles/k-user', pub.key)).status, 403);
    });

    it('keys list shows the keys by id and prefix, never the keys themselves', async () => {
      const created = await runHeraldJson(['keys', 'create', '--project', 'keyring', ...dd]);
      const list = await runHeraldJson<{ id: string; kind: string; prefix: string; revoked_at: string | null }[]>([
        'keys',
        'list',
        '--project',
        'keyring',
        ...dd,
      ]);
      const mine = list.find((k) => k.id === created.id);
      assert.ok(mine, JSON.stringify(list));
      assert.equal(mine.kind, 'secret');
      assert.equal(mine.revoked_at, null);
      assert.ok(created.key.startsWith(mine.prefix) && mine.prefix.length < created.key.length);
      assert.ok(list.length >= 5, 'the two default keys and the three created here');
      const table = await runHerald(['keys', 'list', '--project', 'keyring', ...dd]);
      assertOk(table);
      assert.ok(table.stdout.includes(created.id));
      for (const output of [JSON.stringify(list), table.stdout]) {
        assert.ok(!output.includes(created.key) && !output.includes(project.secret_key), 'keys are shown once, never listed');
      }
    });

    it('keys revoke (by id, or by the key itself) makes the running server refuse the key with 401', async () => {
      const byId = await runHeraldJson(['keys', 'create', '--project', 'keyring', ...dd]);
      const byValue = await runHeraldJson(['keys', 'create', '--project', 'keyring', '--public', ...dd]);
      assert.equal((await updateProfile(server, byId.key, 'r-user')).status, 202);
      const installation = { install_id: 'ios-r', custom_id: 'r-user', platform: 'ios' };
      assert.equal((await call(server, 'POST', '/v1/installations', byValue.key, installation)).status, 202);

      const revokeId = await runHerald(['keys', 'revoke', byId.id, ...dd]);
      assertOk(revokeId);
      assert.ok(revokeId.stdout.includes(byId.id));
      const revokeValue = await runHerald(['keys', 'revoke', byValue.key, ...dd]);
      assertOk(revokeValue);
      assert.ok(revokeValue.stdout.includes(byValue.id));

      const refused = await eventually('the revoked secret key to be refused', async () => {
        const answer = await updateProfile(server, byId.key, 'r-user');
        return answer.status === 401 ? answer : undefined;
      });
      assert.equal(refused.body.error.code, 'UNAUTHORIZED');
      await eventually('the revoked public key to be refused', async () => {
        const answer = await call(server, 'POST', '/v1/installations', byValue.key, installation);
        return answer.status === 401 ? answer : undefined;
      });
      // Only those keys: the project's other secret key still works.
      assert.equal((await updateProfile(server, project.secret_key, 'r-user')).status, 202);

      const list = await runHeraldJson<{ id: string; revoked_at: string | null }[]>(['keys', 'list', '--project', 'keyring', ...dd]);
      for (const id of [byId.id, byValue.id]) assert.match(list.find((k) => k.id === id)?.revoked_at ?? '', /^\d{4}-\d\d-\d\dT/);
    });

    it('key errors are one clear line and a non-zero exit', async () => {
      const [create, list, revokeId, revokeKey] = await Promise.all([
        runHerald(['keys', 'create', '--project', 'no-such-project', ...dd]),
        runHerald(['keys', 'list', '--project', 'no-such-project', ...dd]),
        runHerald(['keys', 'revoke', 'key_doesnotexist', ...dd]),
        runHerald(['keys', 'revoke', `sk_${'A'.repeat(40)}`, ...dd]),
      ]);
      assertOneLineError(create, /no-such-project/);
      assertOneLineError(list, /no-such-project/);
      assertOneLineError(revokeId, /key/i);
      assertOneLineError(revokeKey, /key/i);
    });

    it('a missing required option is reported without a stack trace', async () => {
      const result = await runHerald(['keys', 'create', ...dd]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr.split('\n')[0]!, /--project/);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    });
  });

  it('cells list shows cell c1 with its projects, as a table and as JSON', async () => {
    const cells = await runHeraldJson<{ id: string; projects: number; store: string; log: string; protected: boolean }[]>(['cells', 'list', ...dd]);
    assert.deepEqual(
      cells.map((c) => c.id),
      ['c1'],
    );
    const projects = await runHeraldJson<unknown[]>(['projects', 'list', ...dd]);
    assert.equal(cells[0]!.projects, projects.length);
    assert.match(cells[0]!.store, /^sqlite:/);
    assert.match(cells[0]!.log, /^sqlite:/);
    assert.notEqual(cells[0]!.store, cells[0]!.log, 'the ingest log is separate from the store');
    const table = await runHerald(['cells', 'list', ...dd]);
    assertOk(table);
    assert.match(table.stdout, /^c1\s/m);
  });

  it('migrate succeeds while the server runs, and again (forward-only, idempotent)', async () => {
    for (let round = 0; round < 2; round++) {
      const result = await runHerald(['migrate', ...dd]);
      assertOk(result);
      assert.match(result.stdout, /control plane/);
      assert.match(result.stdout, /cell c1 store/);
      assert.match(result.stdout, /cell c1 log/);
    }
    const write = await updateProfile(server, server.secretKey, 'after-migrate', { ok: true });
    assert.equal(write.status, 202);
    assert.deepEqual((await readApplied(server, server.secretKey, 'after-migrate', write.body.ingest_id)).body.attributes, { ok: true });
  });

  it('audiences create and list; upload streams a file to the running server with progress and waits until it is applied', async () => {
    const created = await runHerald(['audiences', 'create', 'churned', '--project', 'demo', ...dd]);
    assertOk(created);
    assert.match(created.stdout, /created audience aud_\w+ "churned"/);
    const file = path.join(dataDir, 'churned.csv');
    fs.writeFileSync(file, `custom_id\n${Array.from({ length: 20_000 }, (_, i) => `u-${i}`).join('\n')}\n`);
    const uploaded = await runHerald(['audiences', 'upload', file, '--audience', 'churned', '--mode', 'replace', '--key', server.secretKey, '--url', server.url]);
    assertOk(uploaded);
    assert.match(uploaded.stderr, /uploaded .* 20000 rows read/);
    assert.match(uploaded.stderr, /applied: 20,000 rows \(replace\)/);
    const listed = await runHeraldJson(['audiences', 'list', '--project', 'demo', ...dd]);
    assert.deepEqual((listed as any[]).map((a) => [a.name, a.member_count]), [['churned', 20_000]]);

    fs.writeFileSync(file, 'custom_id\nok\n"unterminated\n');
    const failed = await runHerald(['audiences', 'upload', file, '--audience', 'churned', '--key', server.secretKey, '--url', server.url]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /failed: 1 of 2 rows are invalid.*nothing was applied/);
    assert.match(failed.stderr, /line 3 has an unterminated quoted field/);
  });

  it('--help works on every command and subcommand', async () => {
    const top = await runHerald(['--help']);
    assertOk(top);
    assert.match(top.stdout, /^Usage: herald /m);
    const groups = commandsIn(top.stdout);
    for (const expected of ['start', 'projects', 'keys', 'cells', 'migrate', 'quarantine']) assert.ok(groups.includes(expected), `${expected} in ${groups.join(', ')}`);

    const seen: string[] = [];
    const helpOf = async (words: string[]) => {
      const result = await runHerald([...words, '--help']);
      assertOk(result);
      assert.match(result.stdout, new RegExp(`^Usage: herald ${words.join(' ')}\\b`, 'm'), result.stdout);
      seen.push(words.join(' '));
      return result.stdout;
    };
    const leaves: string[][] = [];
    await Promise.all(
      groups.map(async (group) => {
        const help = await helpOf([group]);
        const subcommands = commandsIn(help);
        if (subcommands.length > 0) leaves.push(...subcommands.map((sub) => [group, sub]));
        else assert.match(help, /--data-dir/, `${group} accepts --data-dir`);
      }),
    );
    for (let i = 0; i < leaves.length; i += 4) {
      await Promise.all(
        leaves.slice(i, i + 4).map(async (words) => assert.match(await helpOf(words), /--data-dir/, `${words.join(' ')} accepts --data-dir`)),
      );
    }
    for (const expected of ['projects create', 'projects list', 'keys create', 'keys list', 'keys revoke', 'cells list', 'quarantine list', 'quarantine replay', 'quarantine drop']) {
      assert.ok(seen.includes(expected), `help of ${expected}; saw ${seen.join(', ')}`);
    }
  });

  describe('quarantine (I5)', () => {
    const badPayloads = ['{"kind":"future.kind","project_id":"x","received_at":1}', '{not json'];
    let badSeqs: number[] = [];

    interface Item {
      id: string;
      state: string;
      project_id: string | null;
      log_seq: number;
      attempts: number;
      reason: string;
      payload: string;
      resolved_at: string | null;
    }
    const list = (all = false) => runHeraldJson<Item[]>(['quarantine', 'list', ...(all ? ['--all'] : []), ...dd]);

    it('a record the applier cannot apply is retried, quarantined with reason and payload, and later writes still apply', async () => {
      // Bad rows straight into the cell's log, as a future version or a damaged disk might leave them.
      const db = new Database(path.join(dataDir, 'cells', 'c1', 'log.db'));
      try {
        db.pragma('busy_timeout = 10000');
        const insert = db.prepare('INSERT INTO log_entries (appended_at, size, payload) VALUES (?, ?, ?)');
        badSeqs = db.transaction(() => badPayloads.map((p) => Number(insert.run(Date.now(), p.length, p).lastInsertRowid)))();
      } finally {
        db.close();
      }

      const write = await updateProfile(server, server.secretKey, 'after-bad', { survived: true });
      assert.equal(write.status, 202);
      const read = await readApplied(server, server.secretKey, 'after-bad', write.body.ingest_id);
      assert.deepEqual(read.body.attributes, { survived: true });

      const items = await list();
      assert.deepEqual(
        items.map((i) => [i.id, i.state, i.log_seq, i.attempts, i.payload]),
        [
          ['c1:1', 'quarantined', badSeqs[0], 5, badPayloads[0]],
          ['c1:2', 'quarantined', badSeqs[1], 5, badPayloads[1]],
        ],
      );
      assert.match(items[0]!.reason, /future\.kind/);
      assert.equal(items[0]!.project_id, 'x');
      assert.match(items[1]!.reason, /JSON/);
      assert.equal(items[1]!.project_id, null);

      const table = await runHerald(['quarantine', 'list', ...dd]);
      assertOk(table);
      assert.match(table.stdout, /^c1:1\s+quarantined\s/m);
      assert.match(table.stdout, /^c1:2\s+quarantined\s/m);
    });

    it('quarantine replay appends the record again; still bad, it comes back as a new item', async () => {
      const replay = await runHerald(['quarantine', 'replay', 'c1:1', ...dd]);
      assertOk(replay);
      assert.match(replay.stdout, /c1:1/);

      const again = await eventually('the replayed record to be quarantined again', async () => {
        const items = await list();
        return items.find((i) => i.id !== 'c1:1' && i.id !== 'c1:2');
      });
      assert.equal(again.id, 'c1:3');
      assert.equal(again.payload, badPayloads[0]);
      assert.equal(again.attempts, 5);
      assert.ok(again.log_seq > badSeqs[1]!, `replayed at a new log position (${again.log_seq})`);

      const all = await list(true);
      const first = all.find((i) => i.id === 'c1:1');
      assert.equal(first?.state, 'replayed');
      assert.match(first?.resolved_at ?? '', /^\d{4}-/);
      assert.deepEqual(
        (await list()).map((i) => i.id),
        ['c1:2', 'c1:3'],
      );
      assertOneLineError(await runHerald(['quarantine', 'replay', 'c1:1', ...dd]), /already replayed/);
    });

    it('quarantine drop marks items dropped; they stay visible with --all', async () => {
      for (const id of ['c1:2', '3']) {
        const drop = await runHerald(['quarantine', 'drop', id, ...dd]);
        assertOk(drop);
        assert.match(drop.stdout, /Dropped c1:/);
      }
      assert.deepEqual(await list(), []);
      const empty = await runHerald(['quarantine', 'list', ...dd]);
      assertOk(empty);
      assert.match(empty.stdout, /No quarantined records/);
      const all = await list(true);
      assert.deepEqual(
        all.map((i) => [i.id, i.state]),
        [
          ['c1:1', 'replayed'],
          ['c1:2', 'dropped'],
          ['c1:3', 'dropped'],
        ],
      );
      assertOneLineError(await runHerald(['quarantine', 'drop', 'c1:2', ...dd]), /already dropped/);
    });

    it('a bad quarantine id is one clear error line and a non-zero exit', async () => {
      const [missing, malformed, unknownCell, unknownListCell] = await Promise.all([
        runHerald(['quarantine', 'drop', 'c1:999', ...dd]),
        runHerald(['quarantine', 'replay', 'not-an-id', ...dd]),
        runHerald(['quarantine', 'drop', 'c9:1', ...dd]),
        runHerald(['quarantine', 'list', '--cell', 'c9', ...dd]),
      ]);
      assertOneLineError(missing, /c1:999/);
      assertOneLineError(malformed, /not a quarantine id/);
      assertOneLineError(unknownCell, /c9/);
      assertOneLineError(unknownListCell, /c9/);
    });

    it('the pipeline kept flowing: a write after all of this is applied', async () => {
      const write = await updateProfile(server, server.secretKey, 'after-quarantine', { n: 1 });
      assert.equal(write.status, 202);
      assert.deepEqual((await readApplied(server, server.secretKey, 'after-quarantine', write.body.ingest_id)).body.attributes, { n: 1 });
    });
  });

  it('the server ran throughout and stops cleanly on SIGTERM', async () => {
    assert.equal(server.child.exitCode, null, server.output());
    const code = await server.stop();
    assert.equal(code, 0, server.output());
  });
});

describe('herald start when the first start cannot listen', () => {
  const tmp = tempDir('herald-cli-busy-');
  const blocker = net.createServer();
  let server: HeraldServer | undefined;
  after(async () => {
    await server?.stop(5_000);
    await killAllHeraldChildren();
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    tmp.remove();
  });

  it('reports a busy port in one line, and the demo keys are still shown on the next start that succeeds', async () => {
    const busyPort = await new Promise<number>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port));
    });
    const failed = await runHerald(['start', '--data-dir', tmp.dir, '--port', String(busyPort), '--log-level', 'warn']);
    assertOneLineError(failed, /EADDRINUSE|in use/);

    // A user who reads the error picks another port. The keys of the demo project are shown
    // only once, so this (the first start that actually runs) must show them.
    server = await startHerald(tmp.dir, { port: await freePort(), expectKeys: false });
    assert.match(server.output(), /secret key:\s+sk_/, `no demo keys printed, and none can be recovered:\n${server.output()}`);
    const write = await updateProfile(server, server.secretKey, 'first-user');
    assert.equal(write.status, 202);
  });
});
