// The two installs of the release, started together by whichever install
// suite runs first: the build from source (CPU: the compiler) starts once the
// native packages are published, while the rest is packed, and the global
// install (mostly waiting on the upstream registry) runs beside it. The other
// suite finds its install done or under way.
import { installGlobally, type InstalledCopy } from './install-global.js';
import { fullRelease, nativeRelease } from './release.js';
import { oncePerRun, runLab, runTimings, timed } from './run-lab.js';
import { buildFromSource, type SourceBuild } from './source-build.js';

// What the installed commands need on the user's minimal PATH: doctor's user namespace probe runs `unshare --net true`.
const INSTALLED_PROGRAMS = ['unshare', 'true'];

const global = oncePerRun('global install', async () => {
  const release = await fullRelease();
  return timed('install -g', () => installGlobally(runLab, release, INSTALLED_PROGRAMS));
});

const source = oncePerRun('source build', async () => {
  const release = await nativeRelease();
  return timed('build from source', () => buildFromSource(runLab, release));
});

function startBoth(): void {
  void global();
  void source();
}

/** wirecage and wirecagesrv installed globally from the release. */
export function globalInstall(): Promise<InstalledCopy> {
  startBoth();
  return global();
}

/** The native packages built from source in a project of their own. */
export function sourceBuild(): Promise<SourceBuild> {
  startBoth();
  return source();
}

/** "pack natives 6.1 s, ..." for the steps that have ended so far (they overlap). */
export function installTimings(): string {
  return runTimings.join(', ');
}
