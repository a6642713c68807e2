// The native packages as a machine without a matching prebuild gets them: the
// published @wirecage/netns and tun installed with --build-from-source, so each
// addon's install script compiles it with node-gyp against the installed
// napi-glue headers (a dependency, which npm must install first), and a fresh
// Node loads both builds and gets their typed errors from native code. The
// packing, the registry and the build are shared with the other install suite
// (installs.ts).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOrThrow } from '../lib/exec.js';
import { installTimings, sourceBuild } from './installs.js';
import { envWithoutNpm } from './pack.js';
import { RELEASE_BOUNDS_MS } from './release.js';
import { SOURCE_BUILD_BOUNDS_MS } from './source-build.js';

// Run by the installed copies, from the project: what each throws, by class and code.
const PROBE = `
import { socketInNetns } from '@wirecage/netns';
import { Tun } from '@wirecage/tun';
const caught = (fn) => { try { fn(); return null; } catch (e) { return { name: e.constructor.name, code: e.code, message: e.message }; } };
process.stdout.write(JSON.stringify({
  netns: caught(() => socketInNetns(2147483000, 4, 'udp')),
  tun: caught(() => Tun.open({ name: 'wcsrc0', devicePath: '/nonexistent/net/tun' })),
}));
`;

describe('install: the native packages built from source where no prebuild is used', function () {
  this.timeout(60_000);
  let project: string;
  let installLog: string;

  before(async function () {
    this.timeout(RELEASE_BOUNDS_MS.pack + RELEASE_BOUNDS_MS.registryStart + RELEASE_BOUNDS_MS.publish + SOURCE_BUILD_BOUNDS_MS);
    ({ project, log: installLog } = await sourceBuild());
    console.log(`      install timings: ${installTimings()}`);
    await writeFile(join(project, 'probe.mjs'), PROBE);
  });

  it('compiled each addon and the helpers into build/Release, against the installed napi-glue', async () => {
    const modules = join(project, 'node_modules/@wirecage');
    assert.deepEqual((await readdir(modules)).sort(), ['napi-glue', 'netns', 'tun']);
    for (const [pkg, files] of [
      ['netns', ['netns.node', 'wirecage-cage', 'wirecage-hold', 'wirecage-join', 'wirecage-userns']],
      ['tun', ['tun.node']],
    ] as const) {
      for (const f of files)
        assert.ok(existsSync(join(modules, pkg, 'build/Release', f)), `${pkg} built no ${f}:\n${installLog.slice(-4000)}`);
    }
    assert.match(installLog, /CXX\(target\) Release\/obj\.target\/netns\/native\/addon\.o/);
    assert.match(installLog, /CXX\(target\) Release\/obj\.target\/tun\/native\/addon\.o/);
  });

  it('loads both builds in a fresh Node, whose native errors arrive as NetnsError and TunError', async () => {
    const r = await runOrThrow(process.execPath, ['probe.mjs'], { cwd: project, env: envWithoutNpm(), timeoutMs: 30_000 });
    const { netns, tun } = JSON.parse(r.stdout) as Record<'netns' | 'tun', { name: string; code: string; message: string } | null>;
    assert.equal(netns?.name, 'NetnsError', JSON.stringify(netns));
    assert.equal(netns.code, 'EBADF');
    assert.match(netns.message, /setns failed: EBADF/);
    assert.equal(tun?.name, 'TunError', JSON.stringify(tun));
    assert.equal(tun.code, 'ENOENT');
    assert.match(tun.message, /open \/nonexistent\/net\/tun failed: ENOENT/);
  });
});
