import { describe } from 'node:test';
import { runCellStoreContract } from '../cell-store.contract.ts';
import { createTestDatabase, skipWithoutPg } from '../../../test/support/services.ts';
import { PgCellStore } from './pg-cell-store.ts';

describe('cell store contract: postgres', { skip: skipWithoutPg }, () => {
  runCellStoreContract(async () => {
    const db = await createTestDatabase();
    return { open: () => PgCellStore.open(db.url), cleanup: () => db.drop() };
  });
});
