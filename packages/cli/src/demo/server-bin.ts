// Where `wirecage demo` finds wirecagesrv: next to this CLI in the monorepo
// (apps/wirecagesrv, built), else a `wirecagesrv` on PATH.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MONOREPO_APP = fileURLToPath(new URL('../../../../apps/wirecagesrv/', import.meta.url));

/** The command that runs wirecagesrv: [file, ...leading args]. */
export function wirecagesrvCommand(): string[] {
  if (existsSync(join(MONOREPO_APP, 'bin', 'run.js'))) {
    if (!existsSync(join(MONOREPO_APP, 'dist', 'commands', 'up.js'))) {
      throw new Error(`wirecagesrv in ${MONOREPO_APP} is not built: run \`npm run build\` first`);
    }
    return [process.execPath, join(MONOREPO_APP, 'bin', 'run.js')];
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'wirecagesrv');
    if (dir !== '' && existsSync(candidate)) return [candidate];
  }
  throw new Error('the demo runs a wirecagesrv server and found none: build this repository (npm run build) or put wirecagesrv on PATH');
}
