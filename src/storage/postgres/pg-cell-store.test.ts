import { describe } from 'node:test';
import { runCellStoreContract } from '../cell-store.contract.ts';
import { runOutboxContract } from '../outbox.contract.ts';
import { createTestDatabase, skipWithoutPg } from '../../../test/support/services.ts';
import { PgCellStore } from './pg-cell-store.ts';

const fixture = async () => {
  const db = await createTestDatabase();
  return { open: () => PgCellStore.open(db.url), cleanup: () => db.drop() };
};

describe('cell store contract: postgres', { skip: skipWithoutPg }, () => runCellStoreContract(fixture));
describe('outbox contract: postgres', { skip: skipWithoutPg }, () => runOutboxContract(fixture));
