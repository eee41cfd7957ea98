import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { systemClock } from '../../core/clock.ts';
import { MESSAGES_FILE, startSandbox } from '../../sandbox/sandbox.ts';
import type { SandboxMessage } from '../../sandbox/sandbox-model.ts';
import { serveSandboxControl } from '../../sandbox/sandbox-server.ts';
import { action, addCommonOptions, configFrom, parsePositiveInt, type CommonOptions } from '../cli-support.ts';

/** One line per message: when, which stand-in, to whom, and what it said. */
function summary(m: SandboxMessage): string {
  const b = (m.body ?? {}) as Record<string, unknown>;
  const aps = (b.aps as { alert?: { title?: string; body?: string } } | undefined)?.alert;
  const notification = (b.notification ?? {}) as { title?: string; body?: string };
  const text =
    aps?.title ?? aps?.body ?? notification.title ?? notification.body ?? (b.title as string | undefined) ?? (b.subject as string | undefined) ?? (b.body as string | undefined) ?? JSON.stringify(b).slice(0, 80);
  return `${new Date(m.receivedAt).toISOString()}  ${m.kind.padEnd(8)} ${m.to.length > 40 ? `${m.to.slice(0, 37)}...` : m.to.padEnd(40)}  ${String(text).replace(/\s+/g, ' ').slice(0, 100)}`;
}

export function registerSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('The local stand-ins for every provider (APNs, FCM, Web Push, SMTP, SMS, webhooks)');

  addCommonOptions(
    sandbox
      .command('tail')
      .description('Show what the sandbox of a running `herald start` receives (on this data dir)')
      .option('--channel <channel>', 'push, email, sms or webhook')
      .option('--to <recipient>', 'only messages to this token, address, number or URL')
      .option('--json', 'print each message as JSON')
      .option('--no-follow', 'print what arrived so far and exit'),
  ).action(
    action(async (options: CommonOptions & { channel?: string; to?: string; json?: boolean; follow: boolean }) => {
      const file = path.join(configFrom(options).dataDir, 'sandbox', MESSAGES_FILE);
      let offset = 0;
      let pending = '';
      const show = (): void => {
        if (!fs.existsSync(file)) return;
        const size = fs.statSync(file).size;
        if (size < offset) offset = 0; // the log was rotated
        if (size === offset) return;
        const fd = fs.openSync(file, 'r');
        const chunk = Buffer.alloc(size - offset);
        fs.readSync(fd, chunk, 0, chunk.length, offset);
        fs.closeSync(fd);
        offset = size;
        const lines = (pending + chunk.toString('utf8')).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (!line) continue;
          const m = JSON.parse(line) as SandboxMessage;
          if ((options.channel && m.channel !== options.channel) || (options.to && m.to !== options.to)) continue;
          process.stdout.write(`${options.json ? JSON.stringify(m) : summary(m)}\n`);
        }
      };
      show();
      if (!options.follow) return;
      process.stderr.write(`Following ${file} (Ctrl-C to stop)\n`);
      setInterval(show, 300);
      await new Promise<never>(() => undefined);
    }),
  );

  addCommonOptions(
    sandbox
      .command('serve')
      .description('Run the sandbox on its own, for a Herald started with --sandbox <control URL> (it outlives Herald crashes)')
      .option('--port <port>', 'port of the control API (its stand-ins take the next ports)', parsePositiveInt('--port'))
      .option('--host <host>', 'interface to listen on', '127.0.0.1')
      .option('--keep <n>', 'messages kept for listing', parsePositiveInt('--keep')),
  ).action(
    action(async (options: CommonOptions & { port?: number; host: string; keep?: number }) => {
      const config = configFrom(options);
      const logger = pino({ level: 'warn' });
      const box = await startSandbox({
        clock: systemClock,
        logger,
        host: options.host,
        basePort: options.port ? options.port + 1 : 0,
        dir: path.join(config.dataDir, 'sandbox'),
        ...(options.keep ? { keep: options.keep } : {}),
      });
      const control = await serveSandboxControl(box, options.host, options.port ?? 0);
      process.stdout.write(`Herald sandbox control API at ${control.url}\n`);
      for (const [kind, endpoint] of Object.entries(box.endpoints)) process.stdout.write(`  ${kind.padEnd(8)} ${endpoint}\n`);
      const stop = (): void => {
        void control.close().then(() => box.close()).then(() => process.exit(0));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    }),
  );
}
