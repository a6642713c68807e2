// The release the install suites install, made once per run: every shipped
// workspace packed from the checkout, and published with the better-sqlite3
// the checkout holds to one local registry. The native packages are packed
// and published first, so the build from source can start while the rest is
// packed; no two packs run at once (a package's prepack compiles against the
// dist/ of the packages it depends on, which their own prepack rewrites).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOrThrow } from '../lib/exec.js';
import { betterSqlite3Mirror, type BetterSqlite3Mirror } from './better-sqlite3.js';
import { envWithoutNpm, packWorkspaces, REPO_ROOT, SHIPPED_WORKSPACES } from './pack.js';
import { isolatedNpmEnv, startLocalRegistry, type LocalRegistry } from './registry.js';
import { oncePerRun, runLab, runTimings, timed } from './run-lab.js';

/** The workspaces with addons, and the one whose headers they compile against: what a build from source needs. */
export const NATIVE_WORKSPACES = ['packages/napi-glue', 'packages/netns', 'packages/tun'];

/** Bounds per step: here the natives pack in ~6 s, the rest in ~13 s, publishing takes ~3 s; a 2x slower machine fits. */
export const RELEASE_BOUNDS_MS = { pack: 3 * 60_000, fetch: 2 * 60_000, registryStart: 60_000, publish: 60_000 };

export interface Release {
  /** The registry npm is configured with here, which the local one proxies for third-party packages. */
  upstream: string;
  registry: LocalRegistry;
  /** "pack natives 6.1 s, ..." (steps may overlap): runTimings. */
  timings: readonly string[];
}

export interface FullRelease extends Release {
  sqlite: BetterSqlite3Mirror;
}

const upstreamRegistry = oncePerRun('upstream registry', async () => {
  // From outside the checkout: the user's and the machine's npm setup only.
  const r = await runOrThrow('npm', ['config', 'get', 'registry'], { env: envWithoutNpm(), cwd: tmpdir() });
  return r.stdout.trim();
});

const packDir = oncePerRun('pack dir', async () => {
  const dir = join(await runLab.tempDir(), 'packs');
  await mkdir(dir);
  return dir;
});

const localRegistry = oncePerRun('local registry', async () => {
  const names = await Promise.all(
    SHIPPED_WORKSPACES.map(async (w) => (JSON.parse(await readFile(join(REPO_ROOT, w, 'package.json'), 'utf8')) as { name: string }).name),
  );
  const upstream = await upstreamRegistry();
  return timed('registry', () =>
    startLocalRegistry(runLab, { upstream, local: [...names, 'better-sqlite3'], startTimeoutMs: RELEASE_BOUNDS_MS.registryStart }),
  );
});

/** An npm that publishes to `registry` and to nothing else, with nothing of this machine's npm setup. */
const publishEnv = oncePerRun('publish env', async () => {
  const work = await runLab.tempDir();
  const globalconfig = join(work, 'npmrc-global');
  await writeFile(globalconfig, '');
  await mkdir(join(work, 'home'));
  const { npmrc } = await localRegistry();
  return {
    cwd: work,
    env: isolatedNpmEnv({
      path: process.env.PATH ?? '',
      home: join(work, 'home'),
      userconfig: npmrc,
      globalconfig,
      cache: join(work, 'npm-cache'),
    }),
  };
});

async function publish(tarballs: readonly string[]): Promise<void> {
  const { cwd, env } = await publishEnv();
  // Distinct packages: verdaccio takes them at once.
  await Promise.all(tarballs.map((t) => runOrThrow('npm', ['publish', t], { env, cwd, timeoutMs: RELEASE_BOUNDS_MS.publish })));
}

/** napi-glue, netns and tun packed and published (with the registry started meanwhile). */
export const nativeRelease = oncePerRun('native release', async (): Promise<Release> => {
  const [registry, tarballs] = await Promise.all([
    localRegistry(),
    timed('pack natives', async () => packWorkspaces(await packDir(), RELEASE_BOUNDS_MS.pack, NATIVE_WORKSPACES)),
  ]);
  await timed('publish natives', () => publish([...tarballs.values()]));
  return { upstream: await upstreamRegistry(), registry, timings: runTimings };
});

/** Every shipped workspace and better-sqlite3 published, and the mirror of better-sqlite3's binary serving. */
export const fullRelease = oncePerRun('full release', async (): Promise<FullRelease> => {
  const natives = await nativeRelease();
  const rest = SHIPPED_WORKSPACES.filter((w) => !NATIVE_WORKSPACES.includes(w));
  const [tarballs, sqlite] = await Promise.all([
    timed('pack the rest', async () => packWorkspaces(await packDir(), RELEASE_BOUNDS_MS.pack, rest)),
    timed('better-sqlite3', () => betterSqlite3Mirror(runLab, { upstream: natives.upstream, timeoutMs: RELEASE_BOUNDS_MS.fetch })),
  ]);
  await timed('publish the rest', () => publish([...tarballs.values(), sqlite.packageTarball]));
  return { ...natives, sqlite };
});
