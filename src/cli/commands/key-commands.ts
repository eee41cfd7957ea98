import type { Command } from 'commander';
import { action, addCommonOptions, isoOrDash, printJson, printTable, withControl, type CommonOptions } from '../cli-support.ts';

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('Create, list and revoke API keys');

  addCommonOptions(
    keys
      .command('create')
      .description('Create an API key for a project (shown once)')
      .requiredOption('--project <project>', 'project id or name')
      .option('--public', 'a public key (pk_…) for apps and browsers, instead of a secret key (sk_…)')
      .option('--name <name>', 'a label to tell keys apart')
      .option('--json', 'print JSON'),
  ).action(
    action(async (options: CommonOptions & { project: string; public?: boolean; name?: string; json?: boolean }) => {
      await withControl(options, async (control) => {
        const created = await control.createKey(options.project, options.public ? 'public' : 'secret', options.name ?? null);
        const out = { id: created.record.id, project: created.project.id, kind: created.record.kind, key: created.key };
        if (options.json) return printJson(out);
        process.stdout.write(`Created ${out.kind} key ${out.id} for project "${created.project.name}":\n  ${out.key}\nIt is shown this once; keep it.\n`);
      });
    }),
  );

  addCommonOptions(
    keys.command('list').description("List a project's keys (never the keys themselves)").requiredOption('--project <project>', 'project id or name').option('--json', 'print JSON'),
  ).action(
    action(async (options: CommonOptions & { project: string; json?: boolean }) => {
      await withControl(options, async (control) => {
        const project = await control.findProject(options.project);
        const list = await control.store.listKeys(project.id);
        if (options.json) {
          return printJson(
            list.map((k) => ({ id: k.id, kind: k.kind, prefix: k.prefix, name: k.name, created_at: isoOrDash(k.createdAt), revoked_at: k.revokedAt === null ? null : isoOrDash(k.revokedAt) })),
          );
        }
        printTable(
          ['ID', 'KIND', 'STARTS WITH', 'NAME', 'CREATED', 'REVOKED'],
          list.map((k) => [k.id, k.kind, `${k.prefix}…`, k.name ?? '', isoOrDash(k.createdAt), isoOrDash(k.revokedAt)]),
        );
      });
    }),
  );

  addCommonOptions(
    keys.command('revoke').description('Revoke a key; running servers refuse it within a second').argument('<key>', 'the key id (key_…) or the key itself'),
  ).action(
    action(async (ref: string, options: CommonOptions) => {
      await withControl(options, async (control) => {
        const revoked = await control.revokeKey(ref);
        process.stdout.write(`Revoked ${revoked.kind} key ${revoked.id} (${revoked.prefix}…).\n`);
      });
    }),
  );
}
