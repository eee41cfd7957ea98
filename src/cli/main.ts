import { Command } from 'commander';
import { HERALD_VERSION } from '../version.ts';
import { registerCellCommands } from './commands/cell-commands.ts';
import { registerKeyCommands } from './commands/key-commands.ts';
import { registerMigrateCommand } from './commands/migrate-command.ts';
import { registerProjectCommands } from './commands/project-commands.ts';
import { registerQuarantineCommands } from './commands/quarantine-commands.ts';
import { registerStartCommand } from './commands/start-command.ts';
import { registerSandboxCommands } from './commands/sandbox-commands.ts';
import { registerProviderCommands } from './commands/provider-commands.ts';
import { registerAudienceCommands } from './commands/audience-commands.ts';

/** The `herald` command: thin — parse arguments, call the same services the API uses. */
export function buildProgram(): Command {
  const program = new Command('herald')
    .description('Herald: a self-hosted customer engagement platform that keeps what it acknowledged.')
    .version(HERALD_VERSION)
    // Usage mistakes are one line: "herald: error: … (see --help)".
    .configureOutput({ outputError: (text, write) => write(`herald: ${text.trim().replace(/\n+/g, ' ')} (see --help)\n`) });
  registerStartCommand(program);
  registerProjectCommands(program);
  registerKeyCommands(program);
  registerCellCommands(program);
  registerMigrateCommand(program);
  registerQuarantineCommands(program);
  registerProviderCommands(program);
  registerAudienceCommands(program);
  registerSandboxCommands(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
