// The release installed the way a user's machine gets it: `npm install -g
// --prefix` of wirecage and wirecagesrv from the local registry, with npm's
// own setup out of the way and no compiler, make or python on PATH.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import type { Lab } from '../lib/netns.js';
import { assertNoBuildTools, minimalBinDir } from './min-path.js';
import type { FullRelease } from './release.js';
import { isolatedNpmEnv } from './registry.js';

export interface InstalledCopy {
  /** The `--prefix` of the install, readable by everyone: bin/ and lib/node_modules/. */
  prefix: string;
  /** The minimal bin dir the install ran with (node, npm, sh and `programs`). */
  minBin: string;
  /** Downloads of the better-sqlite3 binary from the local mirror. */
  betterSqlite3Downloads: () => number;
}

/** Here the install takes ~30-50 s (mostly fetching upstream through the registry); a 2x slower machine fits. */
export const INSTALL_BOUNDS_MS = 5 * 60_000;

/**
 * Installs `wirecage` and `wirecagesrv` from `release` into a new prefix. `programs` join node, npm and
 * sh on the minimal PATH (what the installed commands need later, e.g. `unshare`).
 */
export async function installGlobally(lab: Lab, release: FullRelease, programs: readonly string[]): Promise<InstalledCopy> {
  const work = await lab.tempDir();
  // Its own temp dir, opened up: the user runs the installed commands with it on PATH.
  const toolDir = await lab.tempDir();
  await chmod(toolDir, 0o755);
  const minBin = await minimalBinDir(toolDir, ['sh', ...programs]);
  await assertNoBuildTools(minBin);
  const globalconfig = join(work, 'npmrc-global');
  await writeFile(globalconfig, '');
  await mkdir(join(work, 'home'));
  const env = isolatedNpmEnv({
    path: minBin,
    home: join(work, 'home'),
    userconfig: release.registry.npmrc,
    globalconfig,
    cache: join(work, 'npm-cache'),
  });

  // Its own temp dir, opened up: the user who runs wirecage must reach it, as /usr/local.
  const prefix = await lab.tempDir();
  await chmod(prefix, 0o755);
  // umask 022 as on a usual machine, whatever this one's root has: the user reads what root installed.
  const r = await run(
    'sh',
    ['-c', 'umask 022 && exec npm install --global --prefix "$0" --foreground-scripts wirecage wirecagesrv', prefix],
    // prebuild-install's per-package mirror setting (see better-sqlite3.ts); npm warns that it does not know it.
    { env: { ...env, npm_config_better_sqlite3_binary_host: release.sqlite.host }, cwd: work, timeoutMs: INSTALL_BOUNDS_MS },
  );
  if (r.code !== 0) {
    throw new Error(
      `npm install -g exited with ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}\n` +
        `registry: ${release.registry.process.describe().slice(-2000)}`,
    );
  }
  return { prefix, minBin, betterSqlite3Downloads: release.sqlite.downloads };
}
