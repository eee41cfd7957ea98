import type { Command } from 'commander';
import { action, addCommonOptions, isoOrDash, parsePositiveInt, printJson, printTable, withControl, type CommonOptions } from '../cli-support.ts';

export function registerProjectCommands(program: Command): void {
  const projects = program.command('projects').description('Create and list projects');

  addCommonOptions(
    projects
      .command('create')
      .description('Create a project with a secret and a public key (shown once)')
      .argument('<name>', 'project name')
      .option('--cell <cell>', 'place it in this cell (default: the least loaded)')
      .option('--rate-limit <rps>', 'API requests per second for this project', parsePositiveInt('--rate-limit'))
      .option('--json', 'print JSON: id, name, cell, secret_key, public_key'),
  ).action(
    action(async (name: string, options: CommonOptions & { cell?: string; rateLimit?: number; json?: boolean }) => {
      await withControl(options, async (control) => {
        const created = await control.createProject(name, { cellId: options.cell, rateLimitPerSecond: options.rateLimit });
        const out = {
          id: created.project.id,
          name: created.project.name,
          cell: created.project.cellId,
          secret_key: created.secretKey.key,
          public_key: created.publicKey.key,
        };
        if (options.json) return printJson(out);
        process.stdout.write(
          [
            `Created project "${out.name}" (${out.id}) in cell ${out.cell}.`,
            `  secret key: ${out.secret_key}   (server side)`,
            `  public key: ${out.public_key}   (apps and browsers)`,
            'The keys are shown this once; keep them.',
            '',
          ].join('\n'),
        );
      }, { create: true });
    }),
  );

  addCommonOptions(projects.command('list').description('List projects').option('--json', 'print JSON')).action(
    action(async (options: CommonOptions & { json?: boolean }) => {
      await withControl(options, async (control) => {
        const list = await control.store.listProjects();
        if (options.json) {
          return printJson(
            list.map((p) => ({
              id: p.id,
              name: p.name,
              cell: p.cellId,
              rate_limit_per_second: p.rateLimitPerSecond,
              created_at: isoOrDash(p.createdAt),
            })),
          );
        }
        printTable(
          ['ID', 'NAME', 'CELL', 'RATE LIMIT', 'CREATED'],
          list.map((p) => [p.id, p.name, p.cellId, p.rateLimitPerSecond === null ? 'default' : `${p.rateLimitPerSecond}/s`, isoOrDash(p.createdAt)]),
        );
      });
    }),
  );
}
