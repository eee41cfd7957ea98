import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { HeraldConfig } from '../config/config.ts';
import { HeraldError } from '../core/errors.ts';

/**
 * The master key that seals provider credentials (I10): HERALD_MASTER_KEY (base64 of 32 bytes;
 * required when several machines share a PostgreSQL control plane), else `master.key` in the data
 * dir, created on first use and readable by its owner only.
 */
export function loadMasterKey(config: HeraldConfig, options: { create: boolean }): Buffer {
  if (config.masterKey) {
    const key = Buffer.from(config.masterKey, 'base64');
    if (key.length !== 32) throw new HeraldError('CONFIG_INVALID', { message: 'HERALD_MASTER_KEY must be base64 of exactly 32 bytes.' });
    return key;
  }
  const file = path.join(config.dataDir, 'master.key');
  if (fs.existsSync(file)) {
    const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new HeraldError('CONFIG_INVALID', { message: `${file} does not hold a 32-byte base64 key.` });
    return key;
  }
  if (!options.create) throw new HeraldError('CONFIG_INVALID', { message: `No master key: set HERALD_MASTER_KEY or keep ${file}.` });
  fs.mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    // 'wx': if another process created it first, use theirs.
    fs.writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw error;
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  }
}
