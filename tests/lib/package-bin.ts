// Where a declared dependency's command lives, found the way Node finds the
// package (its "exports" entry, then up to its package.json and "bin"), not
// by a path into the source tree: the suites and the bench run the wirecage
// and wirecagesrv they depend on.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The root directory of package `name`, as this package resolves it. */
export function packageDir(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === name) return dir;
    } catch {
      // no package.json here: look higher up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`package ${name} resolves to no directory holding its package.json`);
    dir = up;
  }
}

/** The file of package `name`'s command `command` (its package.json "bin"). */
export function packageBin(name: string, command = name): string {
  const dir = packageDir(name);
  const { bin } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin?: string | Record<string, string> };
  const file = typeof bin === 'string' ? bin : bin?.[command];
  if (!file) throw new Error(`package ${name} has no command ${command}`);
  return resolve(dir, file);
}
