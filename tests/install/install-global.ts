// From the checkout to an installed prefix the way a user's machine gets it:
// pack every shipped workspace, publish the tarballs to a local registry, and
// `npm install -g --prefix` them with npm's own setup out of the way and no
// compiler, make or python on PATH. Each step is timed.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOrThrow } from '../lib/exec.js';
import type { Lab } from '../lib/netns.js';
import { betterSqlite3Mirror } from './better-sqlite3.js';
import { assertNoBuildTools, minimalBinDir } from './min-path.js';
import { envWithoutNpm, packWorkspaces } from './pack.js';
import { isolatedNpmEnv, startLocalRegistry } from './registry.js';

export interface InstalledCopy {
  /** The `--prefix` of the install, readable by everyone: bin/ and lib/node_modules/. */
  prefix: string;
  /** The minimal bin dir the install ran with (node, npm, sh and `programs`). */
  minBin: string;
  /** Downloads of the better-sqlite3 binary from the local mirror. */
  betterSqlite3Downloads: () => number;
  /** "pack 12.3 s, ..." */
  timings: string;
}

/** Bounds per step: here pack takes ~17 s, install ~30-50 s (mostly fetching upstream), a 2x slower machine fits. */
export const INSTALL_BOUNDS_MS = { pack: 3 * 60_000, fetch: 2 * 60_000, registryStart: 60_000, publish: 60_000, install: 5 * 60_000 };

/**
 * Installs `wirecage` and `wirecagesrv` from freshly packed tarballs into a new prefix. `programs` join
 * node, npm and sh on the minimal PATH (what the installed commands need later, e.g. `unshare`).
 */
export async function installGlobally(lab: Lab, programs: readonly string[]): Promise<InstalledCopy> {
  const times: string[] = [];
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    const value = await fn();
    times.push(`${what} ${((Date.now() - start) / 1000).toFixed(1)} s`);
    return value;
  };

  const work = await lab.tempDir();
  const upstream = (await runOrThrow('npm', ['config', 'get', 'registry'], { env: envWithoutNpm(), cwd: work })).stdout.trim();
  const packs = join(work, 'packs');
  await mkdir(packs);
  const tarballs = await step('pack', () => packWorkspaces(packs, INSTALL_BOUNDS_MS.pack));
  const sqlite = await step('better-sqlite3', () => betterSqlite3Mirror(lab, { upstream, timeoutMs: INSTALL_BOUNDS_MS.fetch }));
  const registry = await step('registry', () =>
    startLocalRegistry(lab, { upstream, local: [...tarballs.keys(), 'better-sqlite3'], startTimeoutMs: INSTALL_BOUNDS_MS.registryStart }),
  );

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
    userconfig: registry.npmrc,
    globalconfig,
    cache: join(work, 'npm-cache'),
  });

  await step('publish', async () => {
    for (const tarball of [...tarballs.values(), sqlite.packageTarball]) {
      await runOrThrow('npm', ['publish', tarball], { env, cwd: work, timeoutMs: INSTALL_BOUNDS_MS.publish });
    }
  });

  // Its own temp dir, opened up: the user who runs wirecage must reach it, as /usr/local.
  const prefix = await lab.tempDir();
  await chmod(prefix, 0o755);
  await step('install', async () => {
    // umask 022 as on a usual machine, whatever this one's root has: the user reads what root installed.
    const r = await run(
      'sh',
      ['-c', 'umask 022 && exec npm install --global --prefix "$0" --foreground-scripts wirecage wirecagesrv', prefix],
      // prebuild-install's per-package mirror setting (see better-sqlite3.ts); npm warns that it does not know it.
      { env: { ...env, npm_config_better_sqlite3_binary_host: sqlite.host }, cwd: work, timeoutMs: INSTALL_BOUNDS_MS.install },
    );
    if (r.code !== 0) {
      throw new Error(
        `npm install -g exited with ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}\n` +
          `registry: ${registry.process.describe().slice(-2000)}`,
      );
    }
  });

  return { prefix, minBin, betterSqlite3Downloads: sqlite.downloads, timings: times.join(', ') };
}
