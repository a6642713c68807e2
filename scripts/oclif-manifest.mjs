#!/usr/bin/env node
// The oclif manifest of a CLI package, for its tarball: `prepack` writes oclif.manifest.json (every
// command's flags, args and help, so an installed CLI answers `--help` and finds its commands
// without importing each command module), `postpack` removes it again with `--remove`.
//
// It uses @oclif/core's own Plugin class, which is what `oclif manifest` runs underneath: the
// `oclif` dev package would bring hundreds of packages into the workspace for this one call.
//
// The manifest must not stay in a checkout: oclif trusts a manifest whose version matches the
// package's, so a stale one would hide commands added since.
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = process.cwd();
const file = join(root, 'oclif.manifest.json');

if (process.argv[2] === '--remove') {
  rmSync(file, { force: true });
  process.exit(0);
}
if (process.argv.length > 2) {
  process.stderr.write(`oclif-manifest: unknown argument ${process.argv[2]}; usage: oclif-manifest.mjs [--remove]\n`);
  process.exit(2);
}

// The package's own @oclif/core, not whichever one this script's directory would resolve.
const corePath = createRequire(join(root, 'package.json')).resolve('@oclif/core');
const { Plugin } = await import(pathToFileURL(corePath).href);

// ignoreManifest: build from the commands, never from an old manifest; errorOnManifestCreate:
// a command that fails to load fails the pack instead of going missing from the tarball.
const plugin = new Plugin({
  root,
  type: 'core',
  isRoot: true,
  ignoreManifest: true,
  errorOnManifestCreate: true,
  respectNoCacheDefault: true,
});
await plugin.load();
const ids = Object.keys(plugin.manifest.commands);
if (ids.length === 0) {
  process.stderr.write(`oclif-manifest: no commands found under ${root} (is dist/ built?)\n`);
  process.exit(1);
}
writeFileSync(file, `${JSON.stringify(plugin.manifest, null, 2)}\n`);
process.stdout.write(`oclif-manifest: ${plugin.name} ${plugin.version}, ${ids.length} commands: ${ids.sort().join(', ')}\n`);
