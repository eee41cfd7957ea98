import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Herald's package.json: the nearest one above this module (src/ or a dist/<build>/ directory). */
function packageJson(): { version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { version: string };
    const parent = path.dirname(dir);
    if (parent === dir) return { version: '0.0.0' };
    dir = parent;
  }
}

/** Herald's version, from package.json. */
export const HERALD_VERSION: string = packageJson().version;
