import { describe } from 'node:test';
import path from 'node:path';
import { runCellStoreContract } from '../cell-store.contract.ts';
import { runOutboxContract } from '../outbox.contract.ts';
import { tempDir } from '../../../test/support/temp.ts';
import { SqliteCellStore } from './sqlite-cell-store.ts';

const fixture = async () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'store.db');
  return { open: () => SqliteCellStore.open(file), cleanup: async () => tmp.remove() };
};

describe('cell store contract: sqlite', () => runCellStoreContract(fixture));
describe('outbox contract: sqlite', () => runOutboxContract(fixture));
