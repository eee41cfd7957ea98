import { createReadStream, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import type { Command } from 'commander';
import { HeraldError } from '../../core/errors.ts';
import { timeOrderedId } from '../../core/ids.ts';
import { openStore } from '../../storage/backends.ts';
import { action, addCommonOptions, parsePositiveInt, configFrom, isoOrDash, printJson, printTable, withControl, type CommonOptions } from '../cli-support.ts';

interface ImportJson {
  id: string;
  state: 'in_progress' | 'applied' | 'failed';
  rows_read: number;
  rows_accepted: number;
  reason: string | null;
  errors: { line: number; message: string }[];
  progress: { phase: string; rows_logged: number; rows_total: number; percent: number };
}
interface ErrorJson {
  error?: { message: string; details?: { path: string; message: string }[] };
}

type UploadOptions = CommonOptions & { audience: string; mode: string; key: string; url?: string; port?: number; json?: boolean };

/** One progress line: rewritten in place on a terminal, printed every few seconds otherwise. */
function progressLine(): (text: string, final?: boolean) => void {
  let last = 0;
  return (text, final = false) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\u001b[2K${text}${final ? '\n' : ''}`);
    else if (final || Date.now() - last > 3_000) {
      process.stderr.write(`${text}\n`);
      last = Date.now();
    }
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Streams the file to POST /v1/audiences/{id}/uploads, then follows the upload until it is applied or failed. */
async function upload(file: string, options: UploadOptions): Promise<void> {
  const config = configFrom(options);
  const base = (options.url ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`).replace(/\/$/, '');
  const type = /\.(ndjson|jsonl)$/i.test(file) ? 'application/x-ndjson' : 'text/csv';
  const size = statSync(file).size;
  const show = progressLine();
  let sent = 0;
  const counted = createReadStream(file).pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        show(`uploading ${mb(sent)} of ${mb(size)} (${size === 0 ? 100 : Math.floor((sent / size) * 100)}%)`);
        done(null, chunk);
      },
    }),
  );
  const headers = { authorization: `Bearer ${options.key}` };
  const audience = encodeURIComponent(options.audience);
  const res = await fetch(`${base}/v1/audiences/${audience}/uploads?mode=${encodeURIComponent(options.mode)}`, {
    method: 'POST',
    headers: { ...headers, 'content-type': type },
    body: Readable.toWeb(counted) as ReadableStream,
    duplex: 'half',
  });
  if (res.status !== 202) {
    const { error } = (await res.json()) as ErrorJson;
    const message = error?.message ?? '';
    const details = (error?.details ?? []).filter((d) => !message.includes(d.message)).map((d) => ` ${d.path}: ${d.message}`).join(';');
    throw new HeraldError('INVALID_ARGUMENT', { message: `${message || res.statusText}${details}` });
  }
  let job = (await res.json()) as ImportJson;
  show(`uploaded ${mb(size)}: ${job.rows_read} rows read`, true);
  while (job.state === 'in_progress') {
    const p = job.progress;
    show(`${p.phase}: ${p.rows_logged.toLocaleString('en')} of ${p.rows_total.toLocaleString('en')} rows in the log (${p.percent}%)`);
    await new Promise((r) => setTimeout(r, 500));
    const poll = await fetch(`${base}/v1/audiences/${audience}/uploads/${job.id}`, { headers });
    job = (await poll.json()) as ImportJson;
  }
  if (options.json) printJson(job);
  if (job.state === 'failed') {
    show(`failed: ${job.reason}`, true);
    for (const e of job.errors) process.stderr.write(`  ${e.message}\n`);
    process.exit(1);
  }
  show(`applied: ${job.rows_accepted.toLocaleString('en')} rows (${options.mode}) — upload ${job.id}`, true);
}

export function registerAudienceCommands(program: Command): void {
  const audiences = program.command('audiences').description('Custom audiences: lists of profiles by custom_id or install_id');
  addCommonOptions(audiences.command('list').description('The audiences of a project and their member counts').requiredOption('--project <project>', 'project id or name').option('--json', 'print JSON')).action(
    action(async (options: CommonOptions & { project: string; json?: boolean }) => {
      await withControl(options, async (control, config) => {
        const project = await control.findProject(options.project);
        const cell = control.cell(project.cellId);
        const list = await control.audiences.listAudiences(project.id);
        const store = cell ? await openStore(cell.storeUrl, { dataDir: config.dataDir, create: false }) : undefined;
        const states = new Map((store ? await store.audienceStates(project.id).finally(() => store.close()) : []).map((s) => [s.audienceId, s]));
        const rows = list.map((a) => {
          const s = states.get(a.id);
          return { id: a.id, name: a.name, description: a.description, member_count: s?.memberCount ?? 0, members_updated_at: s ? isoOrDash(s.updatedAt) : null, created_at: isoOrDash(a.createdAt) };
        });
        if (options.json) return printJson(rows);
        printTable(['ID', 'NAME', 'MEMBERS', 'MEMBERS UPDATED', 'CREATED'], rows.map((r) => [r.id, r.name, String(r.member_count), r.members_updated_at ?? '-', r.created_at]));
      });
    }),
  );
  addCommonOptions(
    audiences.command('create').description('Create an audience').argument('<name>').requiredOption('--project <project>', 'project id or name').option('--description <text>').option('--json', 'print JSON'),
  ).action(
    action(async (name: string, options: CommonOptions & { project: string; description?: string; json?: boolean }) => {
      await withControl(options, async (control) => {
        const project = await control.findProject(options.project);
        const now = Date.now();
        const audience = { id: timeOrderedId('aud', now), projectId: project.id, name, description: options.description ?? null, createdAt: now, updatedAt: now };
        await control.audiences.insertAudience(audience);
        if (options.json) return printJson(audience);
        process.stdout.write(`created audience ${audience.id} "${name}" in project ${project.name}\n`);
      });
    }),
  );
  addCommonOptions(
    audiences
      .command('upload')
    .description('Upload members from a CSV (header with custom_id and/or install_id) or NDJSON (.ndjson/.jsonl) file to a running Herald, with progress')
    .argument('<file>')
    .requiredOption('--audience <audience>', 'audience id or name')
    .requiredOption('--key <key>', "the project's secret key (sk_…)")
    .option('--mode <mode>', 'add, remove or replace', 'add')
    .option('--url <url>', 'Herald’s URL (default: http://127.0.0.1:$HERALD_PORT)')
    .option('--port <port>', 'the port of a Herald on this machine (instead of --url)', parsePositiveInt('--port'))
    .option('--json', 'print the final upload state as JSON'),
  ).action(action((file: string, options: UploadOptions) => upload(file, options)));
}
