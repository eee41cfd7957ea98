import { describe } from 'node:test';
import { runIngestLogContract } from '../../ingest/ingest-log.contract.ts';
import { createTestDatabase, skipWithoutPg } from '../../../test/support/services.ts';
import { PgIngestLog } from './pg-ingest-log.ts';

describe('ingest log contract: postgres', { skip: skipWithoutPg }, () => {
  runIngestLogContract(async () => {
    const db = await createTestDatabase();
    return { open: () => PgIngestLog.open(db.url), cleanup: () => db.drop() };
  });
});
