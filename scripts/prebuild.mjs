#!/usr/bin/env node
// Prebuilds a native package for its tarball (run by `prepack` in packages/netns and packages/tun):
// builds every target of its binding.gyp with node-gyp, then copies the addon and the executables,
// stripped, into prebuilds/<platform>-<arch>/ where node-gyp-build finds them on machines without
// a compiler. The addon is named with the tags node-gyp-build matches on (`napi`: one build serves
// every Node with Node-API 8; the libc), as prebuildify names them. prebuildify itself only copies
// the .node file, and the executables must sit next to the addon they belong to, so this script
// does both with node-gyp directly.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const pkgDir = process.cwd();
const fail = (message) => {
  process.stderr.write(`prebuild: ${message}\n`);
  process.exit(1);
};

if (process.platform !== 'linux') fail(`prebuilds are made on Linux only (this is ${process.platform})`);
const gypFile = join(pkgDir, 'binding.gyp');
if (!existsSync(gypFile)) fail(`no binding.gyp in ${pkgDir}: run this from a native package's directory`);

let targets;
try {
  // Our binding.gyp files are plain JSON (gyp also accepts Python literals, which we do not use).
  targets = JSON.parse(readFileSync(gypFile, 'utf8')).targets;
} catch (err) {
  fail(`${gypFile} is not JSON: ${err.message}`);
}
if (!Array.isArray(targets) || targets.length === 0) fail(`${gypFile} has no targets`);

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: pkgDir, stdio: 'inherit' });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

// Incremental (configure + build, not rebuild): an up-to-date build/Release stays as it is, so
// packing does not pull the addon from under a process of the checkout that has it loaded.
const nodeGyp = createRequire(join(pkgDir, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
const nodeDir = resolve(process.execPath, '../..');
const nodeDirArgs = existsSync(join(nodeDir, 'include/node/node_api.h')) ? [`--nodedir=${nodeDir}`] : [];
run(process.execPath, [nodeGyp, 'configure', 'build', '--loglevel=warn', ...nodeDirArgs]);

const glibc = process.report.getReport().header.glibcVersionRuntime;
const libc = glibc ? 'glibc' : 'musl';
const outDir = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`);
rmSync(join(pkgDir, 'prebuilds'), { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const release = join(pkgDir, 'build', 'Release');
const made = [];
for (const t of targets) {
  const executable = t.type === 'executable';
  const from = join(release, executable ? t.target_name : `${t.target_name}.node`);
  if (!existsSync(from)) fail(`node-gyp built no ${from}`);
  const to = join(outDir, executable ? t.target_name : `${t.target_name}.napi.${libc}.node`);
  copyFileSync(from, to);
  chmodSync(to, 0o755);
  run('strip', ['--strip-all', to]);
  made.push(to);
}

// A prebuild that does not load here would ship broken: load it in a fresh Node before packing.
const addon = made.find((f) => f.endsWith('.node'));
if (addon) {
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', addon], { stdio: 'inherit' });
  if (r.status !== 0) fail(`the prebuilt addon ${addon} does not load`);
}

for (const f of made) process.stdout.write(`prebuild: ${f.slice(pkgDir.length + 1)} (${Math.round(statSync(f).size / 1024)} KiB)\n`);
process.stdout.write(`prebuild: built against ${libc}${glibc ? ` ${glibc}` : ''}; loads on Node-API 8 runtimes (Node >= 12.22)\n`);
