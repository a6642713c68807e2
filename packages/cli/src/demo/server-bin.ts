// Where `wirecage demo` finds wirecagesrv: the package as the cli's optional
// peer dependency (installed beside it, or the workspace's link), else a
// `wirecagesrv` on PATH. Optional because `npm install -g wirecage` must not
// pull the server and its native SQLite.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

const PACKAGE = 'wirecagesrv';

/** The command that runs wirecagesrv: [file, ...leading args]. */
export function wirecagesrvCommand(): string[] {
  const dir = installedPackageDir();
  if (dir !== undefined) return packageBin(dir);
  for (const entry of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(entry, PACKAGE);
    if (entry !== '' && existsSync(candidate)) return [candidate];
  }
  throw new Error(
    `the demo runs a wirecagesrv server and found none: \`npm install ${PACKAGE}\` beside wirecage, build this repository (npm run build), or put wirecagesrv on PATH`,
  );
}

/**
 * Node's own lookup (node_modules folders upwards), by the package folder
 * rather than require.resolve: wirecagesrv exports neither its package.json
 * nor its bin.
 */
function installedPackageDir(): string | undefined {
  const lookup = createRequire(import.meta.url).resolve.paths(PACKAGE) ?? [];
  return lookup.map((nm) => join(nm, PACKAGE)).find((dir) => existsSync(join(dir, 'package.json')));
}

function packageBin(dir: string): string[] {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin?: Record<string, string>; main?: string };
  const bin = pkg.bin?.[PACKAGE];
  if (bin === undefined) throw new Error(`${dir}/package.json names no ${PACKAGE} bin`);
  // A workspace link before `npm run build` has the bin but no compiled commands.
  if (pkg.main !== undefined && !existsSync(join(dir, pkg.main))) {
    throw new Error(`wirecagesrv in ${dir} is not built: run \`npm run build\` first`);
  }
  return [process.execPath, join(dir, bin)];
}
