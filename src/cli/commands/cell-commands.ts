import type { Command } from 'commander';
import { redactUrl } from '../../storage/backends.ts';
import { action, addCommonOptions, isoOrDash, printJson, printTable, withControl, type CommonOptions } from '../cli-support.ts';

export function registerCellCommands(program: Command): void {
  const cells = program.command('cells').description('List cells (independent units of storage and work)');
  addCommonOptions(cells.command('list').description('List cells and how many projects each holds').option('--json', 'print JSON')).action(
    action(async (options: CommonOptions & { json?: boolean }) => {
      await withControl(options, async (control) => {
        await control.ensureDefaultCell();
        const list = await control.store.listCells();
        const counts = await control.store.countProjectsByCell();
        const rows = list.map((c) => ({
          id: c.id,
          projects: counts.get(c.id) ?? 0,
          store: redactUrl(c.storeUrl),
          log: redactUrl(c.logUrl),
          protected: c.protected,
          created_at: isoOrDash(c.createdAt),
        }));
        if (options.json) return printJson(rows);
        printTable(
          ['ID', 'PROJECTS', 'STORE', 'LOG', 'PROTECTED', 'CREATED'],
          rows.map((r) => [r.id, String(r.projects), r.store, r.log, r.protected ? 'yes' : 'no', r.created_at]),
        );
      });
    }),
  );
}
