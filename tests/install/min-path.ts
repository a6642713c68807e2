// The PATH of a machine without build tools: a directory of symlinks to the
// few programs named, so an install that tries to compile (node-gyp needs
// python3, make and a C++ compiler) fails instead of quietly succeeding.
import { realpathSync } from 'node:fs';
import { access, constants, mkdir, symlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { run } from '../lib/exec.js';

/** What node-gyp would reach for; none of them may be found on the minimal PATH. */
export const BUILD_TOOLS = ['cc', 'gcc', 'c++', 'g++', 'clang', 'make', 'python3', 'python'];

/** The absolute path of `name` on this machine's own PATH (for programs run outside the minimal one). */
export async function onHostPath(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${name} is not on this machine's PATH; the install test needs it`);
}

/**
 * `dir`/bin with node (this test's own), npm (its CLI entry, run by that node through its
 * `#!/usr/bin/env node` line) and each of `programs` from the host's PATH. Returns the directory.
 */
export async function minimalBinDir(dir: string, programs: readonly string[]): Promise<string> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { mode: 0o755 });
  await symlink(process.execPath, join(bin, 'node'));
  // /usr/bin/npm is itself a link to npm-cli.js; linking the script keeps npm's own lib dir found.
  await symlink(realpathSync(await onHostPath('npm')), join(bin, 'npm'));
  for (const p of programs) await symlink(await onHostPath(p), join(bin, p));
  return bin;
}

/** Fails when any of BUILD_TOOLS is found on `path`. */
export async function assertNoBuildTools(path: string): Promise<void> {
  const probe = BUILD_TOOLS.map((t) => `command -v ${t} || :`).join('; ');
  const r = await run('sh', ['-c', probe], { env: { PATH: path } });
  if (r.code !== 0) throw new Error(`probing build tools on ${path} failed: ${r.stderr}`);
  const found = r.stdout.trim();
  if (found !== '') throw new Error(`build tools are reachable on the minimal PATH ${path}:\n${found}`);
}
