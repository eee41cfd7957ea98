import type { Command } from 'commander';
import { openLog, openStore, redactUrl } from '../../storage/backends.ts';
import { action, addCommonOptions, withControl, type CommonOptions } from '../cli-support.ts';

export function registerMigrateCommand(program: Command): void {
  addCommonOptions(
    program.command('migrate').description('Apply pending schema migrations to the control plane and every cell (also done at start)'),
  ).action(
    action(async (options: CommonOptions) => {
      await withControl(options, async (control, config) => {
        const ctx = { dataDir: config.dataDir, create: true };
        const controlVersion = (await control.store.migrate()).currentVersion;
        process.stdout.write(`control plane (${redactUrl(control.url)}): schema version ${controlVersion}\n`);
        await control.ensureDefaultCell();
        for (const cell of control.cells()) {
          const store = await openStore(cell.storeUrl, ctx);
          try {
            process.stdout.write(`cell ${cell.id} store (${redactUrl(cell.storeUrl)}): schema version ${(await store.migrate()).currentVersion}\n`);
          } finally {
            await store.close();
          }
          const log = await openLog(cell.logUrl, ctx);
          try {
            const stats = await log.stats();
            process.stdout.write(`cell ${cell.id} log (${redactUrl(cell.logUrl)}): ready, head at ${stats.headSeq}, ${stats.entries} entries kept\n`);
          } finally {
            await log.close();
          }
        }
      }, { create: true });
    }),
  );
}
