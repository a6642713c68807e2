// The two installs of the release, started together by whichever install
// suite runs first: the build from source (CPU: the compiler) starts once the
// native packages are published, while the rest is packed, and the global
// install (mostly waiting on the upstream registry) runs beside it. The other
// suite finds its install done or under way.
import { installGlobally, type InstalledCopy } from './install-global.js';
import { fullRelease, nativeRelease } from './release.js';
import { oncePerRun, runLab, timed } from './run-lab.js';
import { buildFromSource, type SourceBuild } from './source-build.js';

// What the installed commands need on the user's minimal PATH: doctor's user namespace probe runs `unshare --net true`.
const INSTALLED_PROGRAMS = ['unshare', 'true'];

const global = oncePerRun(async () => {
  const release = await fullRelease();
  const times: string[] = [];
  const installed = await timed(times, 'install -g', () => installGlobally(runLab, release, INSTALLED_PROGRAMS));
  return { installed, timings: [...release.timings, ...times].join(', ') };
});

const source = oncePerRun(async () => {
  const release = await nativeRelease();
  const times: string[] = [];
  const build = await timed(times, 'build from source', () => buildFromSource(runLab, release));
  return { build, timings: times.join(', ') };
});

function startBoth(): void {
  void global();
  void source();
}

/** wirecage and wirecagesrv installed globally from the release, and the steps' timings. */
export function globalInstall(): Promise<{ installed: InstalledCopy; timings: string }> {
  startBoth();
  return global();
}

/** The native packages built from source in a project of their own, and the steps' timings. */
export function sourceBuild(): Promise<{ build: SourceBuild; timings: string }> {
  startBoth();
  return source();
}
