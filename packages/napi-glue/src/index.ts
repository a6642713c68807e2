import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { getSystemErrorMap } from 'node:util';

/** How native/errors.cc builds an addon's typed error: the class of the addon's src/errors.ts. */
export type ErrnoErrorClass = new (errno: number, syscall: string, context: string, kernelMessage: string) => Error;

/** What every addon built with this package exports (native/wcglue/errors.h). */
export interface GlueAddon {
  setErrorFactory(factory: (errno: number, syscall: string, context: string, kernelMessage: string) => Error): void;
}

export interface LoadedAddon<T> {
  addon: T;
  /** The directory the addon was loaded from: executables built with it sit next to it. */
  dir: string;
}

/**
 * Loads the addon of the package at `packageRoot` and registers `errorClass` as the error its
 * native code throws. node-gyp-build picks build/Release/ when it holds an addon (a checkout, or an
 * install that built from source), else the prebuild in prebuilds/<platform>-<arch>/ that matches
 * this Node and libc. Both are required from the package (which has node-gyp-build for its install
 * script anyway), so that this module needs no import.meta.url: the cli's bundles inline it.
 */
export function loadAddon<T extends GlueAddon>(packageName: string, packageRoot: string, errorClass: ErrnoErrorClass): LoadedAddon<T> {
  const require = createRequire(join(packageRoot, 'package.json'));
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  let path: string;
  try {
    path = nodeGypBuild.resolve(packageRoot);
  } catch (err) {
    throw new Error(
      `${packageName}: no native addon for this machine; reinstall the package (it builds from source when no ` +
        `prebuild matches), or run \`npm run build\` in packages/${basename(packageRoot)} of a checkout (${(err as Error).message.trim()})`,
      { cause: err },
    );
  }
  let addon: T;
  try {
    addon = require(path) as T;
  } catch (err) {
    throw new Error(`${packageName}: cannot load the native addon ${path}: ${(err as Error).message}`, { cause: err });
  }
  addon.setErrorFactory((errno, syscall, context, kernelMessage) => new errorClass(errno, syscall, context, kernelMessage));
  return { addon, dir: dirname(path) };
}

// Linux errnos the native code can return that libuv's table does not name.
const linuxOnly = new Map<number, [string, string]>([
  [77, ['EBADFD', 'file descriptor in bad state (the interface was deleted)']],
  [94, ['ESOCKTNOSUPPORT', 'socket type not supported']],
]);

/** [code, description] for a positive errno: ['EPERM', 'operation not permitted']. */
export function describeErrno(errno: number): [string, string] {
  return getSystemErrorMap().get(-errno) ?? linuxOnly.get(errno) ?? [`E${errno}`, `error ${errno}`];
}
