// `wirecage run` without oclif's start-up. oclif's Config.load reads every
// plugin's package and, in a checkout (no oclif.manifest.json), imports every
// command module, doctor's and setup's with @wirecage/netns's addon, before
// `run` sees its argv: about 80 ms of CPU on a cage that takes a few hundred.
// The same Run class runs, with the same parse, errors and exit statuses; it
// gets a Config of just what oclif's Command and `run` read. Help (--help or
// -h before `--`) and every other command go through oclif as before.
//
// This module imports nothing but node:fs, so bin/run.js pays for nothing
// when the command line is not a run.
import { readFileSync } from 'node:fs';
import type { Config } from '@oclif/core';

interface PackageJson {
  name: string;
  version: string;
  oclif: { bin: string; additionalHelpFlags?: string[] };
}

const pjson = (): PackageJson => JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as PackageJson;

/** Whether oclif would run the `run` command for `argv` (bin/run.js's argv, the legacy form already made a `run`). */
export function isFastRun(argv: string[], helpFlags: string[]): boolean {
  if (argv[0] !== 'run') return false;
  // oclif's helpAddition: a help flag anywhere before `--` shows help instead of running.
  for (const a of argv) {
    if (a === '--') return true;
    if (helpFlags.includes(a)) return false;
  }
  return true;
}

/** The help flags oclif honours for this CLI: --help and package.json's oclif.additionalHelpFlags. */
export const helpFlags = (pkg: PackageJson = pjson()): string[] => [...new Set([...(pkg.oclif.additionalHelpFlags ?? []), '--help'])];

/**
 * Runs `argv` as oclif would when it is a `run` (isFastRun) and returns true; returns false,
 * having loaded nothing, for anything else.
 */
export async function fastRun(argv: string[]): Promise<boolean> {
  const pkg = pjson();
  if (!isFastRun(argv, helpFlags(pkg))) return false;
  // oclif by its default export (module.exports, as Node gives it to an ES module): a bundle's
  // chunk (scripts/bundle.mjs) carries no named exports for a CommonJS package.
  const [{ default: Run }, { default: oclif }] = await Promise.all([import('./commands/run.js'), import('@oclif/core')]);
  const { flush, handle } = oclif;
  const cmd = new Run(argv.slice(1), runConfig(pkg));
  cmd.id = 'run';
  // As oclif's execute: the command's own boundary (WirecageCommand.catch) reports expected and
  // internal errors; what it rethrows (oclif's own) gets oclif's handler.
  try {
    await (cmd as unknown as { _run(): Promise<unknown> })._run();
    await flush();
  } catch (err) {
    await handle(err as Error);
  }
  return true;
}

/**
 * What oclif's Command reads from its Config on a run (init's userAgent, parse's preparse hook,
 * removeEnvVar's scoped keys) and what `run` reads (bin). `run` has no aliases and no hooks of
 * its own; ':' as topicSeparator keeps the deprecated-alias check from looking up other commands.
 */
function runConfig(pkg: PackageJson): Config {
  const bin = pkg.oclif.bin;
  const scopedEnvVarKey = (k: string) => [bin.replaceAll('@', '').replaceAll(/[/-]/g, '_'), k].join('_').toUpperCase();
  const config = {
    bin,
    binAliases: [],
    name: pkg.name,
    version: pkg.version,
    pjson: pkg,
    topicSeparator: ':',
    userAgent: `${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}`,
    runHook: () => Promise.resolve({ successes: [], failures: [] }),
    scopedEnvVarKey,
    scopedEnvVarKeys: (k: string) => [scopedEnvVarKey(k)],
    scopedEnvVar: (k: string) => process.env[scopedEnvVarKey(k)],
  };
  return config as unknown as Config;
}
