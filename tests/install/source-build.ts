// The native packages as a machine without a matching prebuild gets them:
// @wirecage/netns and @wirecage/tun installed from the local registry with
// --build-from-source into a fresh project, so each addon's install script
// compiles it with node-gyp against the napi-glue npm installed first as
// their dependency. The Node headers are this Node's own (no download).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run } from '../lib/exec.js';
import type { Lab } from '../lib/netns.js';
import type { Release } from './release.js';
import { isolatedNpmEnv } from './registry.js';

/** Here the install (two addons compiled) takes ~35-60 s; a 2x slower machine, also busy packing, fits. */
export const SOURCE_BUILD_BOUNDS_MS = 8 * 60_000;

export interface SourceBuild {
  /** The project's directory: package.json and node_modules/. */
  project: string;
  /** What npm and the install scripts printed (the compiler's lines among them). */
  log: string;
}

/** Installs the native packages of `release`, built from source, into a new project. */
export async function buildFromSource(lab: Lab, release: Release): Promise<SourceBuild> {
  const work = await lab.tempDir();
  const project = join(work, 'project');
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'from-source', version: '1.0.0', private: true, type: 'module' }));
  const globalconfig = join(work, 'npmrc-global');
  await writeFile(globalconfig, '');
  await mkdir(join(work, 'home'));
  const env = {
    ...isolatedNpmEnv({
      path: process.env.PATH ?? '',
      home: join(work, 'home'),
      userconfig: release.registry.npmrc,
      globalconfig,
      cache: join(work, 'npm-cache'),
    }),
    // node-gyp-build compiles even where a prebuild matches; node-gyp uses this Node's headers.
    npm_config_build_from_source: 'true',
    npm_config_nodedir: resolve(process.execPath, '../..'),
    // node-gyp runs make with one job unless told; --foreground-scripts runs the two installs one after the other.
    JOBS: 'max',
  };
  const r = await run('npm', ['install', '--foreground-scripts', '@wirecage/netns', '@wirecage/tun'], {
    env,
    cwd: project,
    timeoutMs: SOURCE_BUILD_BOUNDS_MS,
  });
  const log = r.stdout + r.stderr;
  if (r.code !== 0)
    throw new Error(`npm install exited with ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}:\n${log.slice(-6000)}`);
  return { project, log };
}
