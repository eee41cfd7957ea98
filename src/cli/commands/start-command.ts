import type { Command } from 'commander';
import { backendFor } from '../../storage/backends.ts';
import { HERALD_VERSION } from '../../version.ts';
import { action, addCommonOptions, configFrom, type CommonOptions } from '../cli-support.ts';

interface StartOptions extends CommonOptions {
  sandbox?: string;
  port?: string;
  host?: string;
  logLevel?: string;
}

export function registerStartCommand(program: Command): void {
  addCommonOptions(
    program
      .command('start')
      .description('Run Herald: the API, the ingest log and the appliers of every cell')
      .option('-p, --port <port>', 'HTTP port (default: $HERALD_PORT or 8080; 0 picks a free one)')
      .option('--host <host>', 'interface to listen on (default: $HERALD_HOST or 127.0.0.1; 0.0.0.0 for all)')
      .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default: info)')
      .option('--sandbox <mode>', '"auto" (run the provider sandbox, default), "off", or the control URL of a `herald sandbox serve`'),
  ).action(
    action(async (options: StartOptions) => {
      const config = configFrom(options);
      // Loaded on demand: the other commands need none of the HTTP stack.
      const { createApp } = await import('../../app.ts');
      const app = await createApp(config, { createDemo: true });
      const storage = config.databaseUrl ? `${backendFor(config.databaseUrl).label} ${backendFor(config.databaseUrl).redact(config.databaseUrl)}` : `SQLite in ${config.dataDir}`;
      const out: string[] = [
        `Herald ${HERALD_VERSION} is running at ${app.url}  (storage: ${storage})`,
        `  API docs: ${app.url}/docs    health: ${app.url}/v1/ready`,
      ];
      if (app.sandbox) {
        out.push(
          '  sandbox: local stand-ins for APNs, FCM, Web Push, SMTP, SMS and webhooks receive the demo project\'s messages;',
          '           watch them with `npx herald sandbox tail` or GET /v1/sandbox/messages',
        );
      }
      if (app.demo) {
        const { project, secretKey, publicKey } = app.demo;
        out.push(
          '',
          'First start: created the project "demo". Its keys are shown this once; keep them.',
          `  project id:  ${project.id}`,
          `  secret key:  ${secretKey.key}   (server side)`,
          `  public key:  ${publicKey.key}   (apps and browsers)`,
          '',
          'Send a profile:',
          `  curl -X POST ${app.url}/v1/profiles/update -H 'Authorization: Bearer ${secretKey.key}' \\`,
          `    -H 'Content-Type: application/json' -d '[{"identifiers":{"custom_id":"user-1"},"attributes":{"$email_address":"ada@example.com"}}]'`,
        );
      }
      process.stdout.write(`${out.join('\n')}\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        process.stdout.write(`\n${signal}: stopping (committing what was accepted)...\n`);
        app.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    }),
  );
}
