import type { Command } from 'commander';
import type { ControlPlane } from '../../control/control-plane.ts';
import type { CellRecord } from '../../control/control-store.ts';
import { HeraldError } from '../../core/errors.ts';
import type { HeraldConfig } from '../../config/config.ts';
import { openLog, openStore } from '../../storage/backends.ts';
import type { CellStore, QuarantineItem } from '../../storage/cell-store.ts';
import { action, addCommonOptions, isoOrDash, printJson, printTable, withControl, type CommonOptions } from '../cli-support.ts';

interface QuarantineOptions extends CommonOptions {
  cell?: string;
  json?: boolean;
  all?: boolean;
}

/** Quarantined records are named `<cell>:<n>`; a bare number needs --cell or a single cell. */
function parseRef(ref: string, options: QuarantineOptions, control: ControlPlane): { cell: CellRecord; id: number } {
  const m = /^(?:([a-z][a-z0-9_]*):)?(\d+)$/.exec(ref);
  if (!m) throw new HeraldError('INVALID_ARGUMENT', { message: `"${ref}" is not a quarantine id; ids look like c1:17.` });
  return { cell: pickCell(m[1] ?? options.cell, control), id: Number(m[2]) };
}

function pickCell(cellId: string | undefined, control: ControlPlane): CellRecord {
  const cells = control.cells();
  if (cellId === undefined) {
    if (cells.length === 1) return cells[0]!;
    throw new HeraldError('INVALID_ARGUMENT', { message: `There are ${cells.length} cells; say which with --cell.` });
  }
  const cell = control.cell(cellId);
  if (!cell) throw new HeraldError('CELL_NOT_FOUND', { message: `No cell "${cellId}"; see \`herald cells list\`.` });
  return cell;
}

async function withStore<T>(cell: CellRecord, config: HeraldConfig, fn: (store: CellStore) => Promise<T>): Promise<T> {
  const store = await openStore(cell.storeUrl, { dataDir: config.dataDir, create: false });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function quarantined(store: CellStore, id: number, cell: CellRecord): Promise<QuarantineItem> {
  const item = await store.getQuarantine(id);
  if (!item) throw new HeraldError('QUARANTINE_ITEM_NOT_FOUND', { message: `No quarantined record ${cell.id}:${id}.` });
  if (item.state !== 'quarantined') {
    throw new HeraldError('INVALID_ARGUMENT', { message: `Record ${cell.id}:${id} was already ${item.state}.` });
  }
  return item;
}

export function registerQuarantineCommands(program: Command): void {
  const q = program.command('quarantine').description('Inspect, replay or drop log records the applier could not apply');

  addCommonOptions(
    q
      .command('list')
      .description('List quarantined records with their reason')
      .option('--cell <cell>', 'only this cell')
      .option('--all', 'include replayed and dropped records')
      .option('--json', 'print JSON, with payloads'),
  ).action(
    action(async (options: QuarantineOptions) => {
      await withControl(options, async (control, config) => {
        await control.ensureDefaultCell();
        const cells = options.cell ? [pickCell(options.cell, control)] : control.cells();
        const rows: (QuarantineItem & { cell: string })[] = [];
        for (const cell of cells) {
          const items = await withStore(cell, config, (store) =>
            store.listQuarantine({ states: options.all ? ['quarantined', 'replayed', 'dropped'] : ['quarantined'], limit: 10_000 }),
          );
          rows.push(...items.map((i) => ({ ...i, cell: cell.id })));
        }
        if (options.json) {
          return printJson(
            rows.map((r) => ({
              id: `${r.cell}:${r.id}`,
              state: r.state,
              project_id: r.projectId,
              log_seq: r.seq,
              attempts: r.attempts,
              reason: r.reason,
              payload: r.payload,
              created_at: isoOrDash(r.createdAt),
              resolved_at: r.resolvedAt === null ? null : isoOrDash(r.resolvedAt),
            })),
          );
        }
        if (rows.length === 0) return void process.stdout.write('No quarantined records.\n');
        printTable(
          ['ID', 'STATE', 'PROJECT', 'LOG SEQ', 'ATTEMPTS', 'QUARANTINED', 'REASON'],
          rows.map((r) => [`${r.cell}:${r.id}`, r.state, r.projectId ?? '?', String(r.seq), String(r.attempts), isoOrDash(r.createdAt), r.reason.slice(0, 100)]),
        );
      });
    }),
  );

  addCommonOptions(
    q
      .command('replay')
      .description('Append a quarantined record to its cell log again, so the applier retries it')
      .argument('<id>', 'the quarantine id, like c1:17')
      .option('--cell <cell>', 'the cell, when the id has none'),
  ).action(
    action(async (ref: string, options: QuarantineOptions) => {
      await withControl(options, async (control, config) => {
        await control.ensureDefaultCell();
        const { cell, id } = parseRef(ref, options, control);
        await withStore(cell, config, async (store) => {
          const item = await quarantined(store, id, cell);
          const log = await openLog(cell.logUrl, { dataDir: config.dataDir, create: false });
          try {
            // Append first, then mark: a crash in between can replay twice, never lose the record.
            const [outcome] = await log.append([{ payloads: [item.payload] }], Date.now());
            await store.resolveQuarantine(id, 'replayed', Date.now());
            const seq = outcome?.kind === 'appended' ? outcome.lastSeq : '?';
            process.stdout.write(`Replayed ${cell.id}:${id} as log record ${seq}; the applier will apply it (or quarantine it again).\n`);
          } finally {
            await log.close();
          }
        });
      });
    }),
  );

  addCommonOptions(
    q
      .command('drop')
      .description('Give up on a quarantined record (it stays listed with --all)')
      .argument('<id>', 'the quarantine id, like c1:17')
      .option('--cell <cell>', 'the cell, when the id has none'),
  ).action(
    action(async (ref: string, options: QuarantineOptions) => {
      await withControl(options, async (control, config) => {
        await control.ensureDefaultCell();
        const { cell, id } = parseRef(ref, options, control);
        await withStore(cell, config, async (store) => {
          await quarantined(store, id, cell);
          await store.resolveQuarantine(id, 'dropped', Date.now());
          process.stdout.write(`Dropped ${cell.id}:${id}.\n`);
        });
      });
    }),
  );
}
