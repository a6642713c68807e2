#!/usr/bin/env node
// Bundles the two entry points on a cage's critical path, in place, after tsc: dist/fast-run.js
// (stage 1 of `wirecage run`, with @oclif/core's parser) and dist/cage/stage2.js (the cage's
// stage 2, with @wirecage/netns, tun and wg-engine). Each was a graph of 130-220 modules whose
// resolution, file reads and per-module compilation made up most of its start-up; one file each
// saves that (README, "Cage start-up"). Every other module stays as tsc wrote it.
//
// What a bundle must keep working, as it moves code away from the file it was written in:
// - import.meta.url: a workspace package's file (the addon loaders find build/ from it, the data
//   plane its shard worker) gets its own file's URL back, found at run time through the package's
//   entry (import.meta.resolve), as the package may sit elsewhere once installed; the cli's own
//   files get theirs relative to the bundle (same package, fixed layout).
// - Third-party CommonJS packages imported by a workspace package (piscina, prom-client) are not
//   bundled but required from that package, where npm put them for it: piscina starts its workers
//   from its own files. @noble/hashes (ESM, plain code) and @oclif/core (imported by the cli) are
//   bundled.
// - CommonJS code in the bundle calls require() for Node's built-ins: the banner provides one.
// - A CommonJS package imported dynamically from a chunk has only a default export (esbuild's
//   splitting): fast-run.ts takes @oclif/core's functions from it.
//
//   node scripts/bundle.mjs        (from packages/cli, after tsc)
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENTRIES = ['dist/fast-run.js', 'dist/cage/stage2.js'];
/** The cli's entry (package.json's exports), from which the bundles find the cli's own files. */
const OWN_ENTRY = join(root, 'dist/index.js');
const CHUNKS = 'dist/chunks';
const MARK = '// wirecage bundle (scripts/bundle.mjs)';
const WORKSPACE_SCOPE = '@wirecage/';
/** ESM-only third-party code a workspace package imports: bundled (require() cannot load it on Node 20). */
const BUNDLED_ESM = /^@noble\//;

const BANNER = `${MARK}
import { createRequire as __wcCreateRequire } from 'node:module';
const require = __wcCreateRequire(import.meta.url);
const __wcUrl = (pkg, rel) => new URL(rel, import.meta.resolve(pkg)).href;
const __wcOwnUrl = (rel) => new URL(rel, import.meta.resolve('wirecage')).href;
const __wcRequireFrom = (pkg) => __wcCreateRequire(import.meta.resolve(pkg));`;

/** The workspace package (name and directory) a file belongs to, or null for the cli and third-party code. */
function workspacePackageOf(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    let pkg;
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    } catch {
      continue;
    }
    if (dir === root.replace(/\/$/, '')) return null;
    return pkg.name?.startsWith(WORKSPACE_SCOPE) ? { name: pkg.name, dir } : null;
  }
  return null;
}

/** Each file's own import.meta.url, as described above. */
const metaUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const pkg = workspacePackageOf(args.path);
      let url;
      if (pkg) {
        const entry = createRequire(join(root, 'package.json')).resolve(pkg.name);
        url = `__wcUrl(${JSON.stringify(pkg.name)}, ${JSON.stringify(relative(dirname(entry), args.path).split(sep).join('/'))})`;
      } else if (args.path.startsWith(root)) {
        url = `__wcOwnUrl(${JSON.stringify(relative(dirname(OWN_ENTRY), args.path).split(sep).join('/'))})`;
      } else {
        return undefined; // third-party CommonJS (@oclif/core): the words in comments only
      }
      return { contents: text.replaceAll('import.meta.url', url), loader: 'js' };
    });
  },
};

/** Third-party CommonJS imported by a workspace package: required from that package at run time. */
const requiredFromOwner = {
  name: 'required-from-owner',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || args.path.startsWith(WORKSPACE_SCOPE) || BUNDLED_ESM.test(args.path)) return undefined;
      const owner = args.importer && workspacePackageOf(args.importer);
      if (!owner) return undefined;
      return { path: args.path, namespace: 'required-from', pluginData: owner.name };
    });
    b.onLoad({ filter: /.*/, namespace: 'required-from' }, (args) => ({
      contents: `module.exports = __wcRequireFrom(${JSON.stringify(args.pluginData)})(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

for (const entry of ENTRIES) {
  if (readFileSync(join(root, entry), 'utf8').startsWith(MARK)) {
    throw new Error(`${entry} is a bundle already: run tsc first (npm run build)`);
  }
}
rmSync(join(root, CHUNKS), { recursive: true, force: true });
await build({
  entryPoints: ENTRIES.map((e) => join(root, e)),
  // In place: bin/run.js and launch.ts start the same files as before.
  outdir: join(root, 'dist'),
  outbase: join(root, 'dist'),
  allowOverwrite: true,
  // What an entry loads only on demand (heal.js, the registration and metrics modules, oclif
  // behind fast-run's check) stays in chunks of its own, with the built-ins it imports.
  splitting: true,
  chunkNames: `${CHUNKS.slice('dist/'.length)}/[name]-[hash]`,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: { js: BANNER },
  plugins: [metaUrl, requiredFromOwner],
  // @oclif/core's TypeScript support (development mode only) would bring in 9 MB of compiler.
  external: ['typescript'],
  // oclif checks Node against its own package.json's engines, which it finds from __dirname: in a
  // bundle it finds none and gives up, after evaluating all of semver (47 modules) for nothing.
  // (The cli's own engines field is npm's to enforce.)
  define: { 'process.env.OCLIF_DISABLE_ENGINE_WARNING': '"1"' },
  // A bug's stack names the bundle's functions; with NODE_OPTIONS=--enable-source-maps, its files
  // and lines in the tsc output. Node reads a map only when asked: no cost to a start-up.
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
  legalComments: 'none',
});
