import type { Command } from 'commander';
import { effectiveLimits } from '../../delivery/configured-providers.ts';
import { PROVIDERS } from '../../delivery/providers/registry.ts';
import { action, addCommonOptions, isoOrDash, printJson, printTable, withControl, type CommonOptions } from '../cli-support.ts';

export function registerProviderCommands(program: Command): void {
  const providers = program.command('providers').description('Delivery providers (configure them with PUT /v1/providers/{kind})');
  addCommonOptions(
    providers
      .command('list')
      .description('Every provider kind, and whether a project configured it (never the credentials)')
      .requiredOption('--project <project>', 'project id or name')
      .option('--json', 'print JSON'),
  ).action(
    action(async (options: CommonOptions & { project: string; json?: boolean }) => {
      await withControl(options, async (control) => {
        const project = await control.findProject(options.project);
        await control.refresh();
        const configured = control.providers(project.id);
        const rows = PROVIDERS.map((p) => {
          const record = configured.find((c) => c.kind === p.kind);
          const limits = effectiveLimits(p.limits, record?.limits ?? null);
          return {
            kind: p.kind,
            channel: p.channel,
            platforms: p.platforms ? [...p.platforms] : null,
            configured: record !== undefined,
            sandbox: record?.sandbox ?? false,
            disabled_reason: record?.disabledReason ?? null,
            limits: { rate_per_second: limits.ratePerSecond, max_concurrency: limits.maxConcurrency },
            updated_at: record ? isoOrDash(record.updatedAt) : null,
          };
        });
        if (options.json) return printJson(rows);
        printTable(
          ['KIND', 'CHANNEL', 'CONFIGURED', 'RATE/S', 'CONCURRENCY', 'UPDATED', 'NOTE'],
          rows.map((r) => [
            r.kind,
            r.channel + (r.platforms ? ` (${r.platforms.join(', ')})` : ''),
            r.configured ? (r.sandbox ? 'sandbox' : 'yes') : 'no',
            String(r.limits.rate_per_second),
            String(r.limits.max_concurrency),
            r.updated_at ?? '-',
            r.disabled_reason ? `disabled: ${r.disabled_reason}` : '',
          ]),
        );
      });
    }),
  );
}
