import { readFileSync } from 'node:fs';

/** Herald's version, from package.json. */
export const HERALD_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
