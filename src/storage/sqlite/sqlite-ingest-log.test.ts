import { describe } from 'node:test';
import path from 'node:path';
import { runIngestLogContract } from '../../ingest/ingest-log.contract.ts';
import { tempDir } from '../../../test/support/temp.ts';
import { SqliteIngestLog } from './sqlite-ingest-log.ts';

describe('ingest log contract: sqlite', () => {
  runIngestLogContract(async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'log.db');
    return { open: () => SqliteIngestLog.open(file), cleanup: async () => tmp.remove() };
  });
});
