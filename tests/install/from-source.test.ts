// The native packages as a machine without a matching prebuild gets them: the
// packed @wirecage/napi-glue, netns and tun installed with --build-from-source,
// so each addon's install script compiles it with node-gyp against the
// installed napi-glue headers (a dependency, which npm must install first),
// and a fresh Node loads both builds and gets their typed errors from native
// code. The third-party dependencies come from the registry npm is configured
// with; the Node headers are this Node's own (no download).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run, runOrThrow } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import { envWithoutNpm, packWorkspaces } from './pack.js';
import { isolatedNpmEnv } from './registry.js';

const NATIVE_WORKSPACES = ['packages/napi-glue', 'packages/netns', 'packages/tun'];
/** Here packing takes ~25 s and the install (two addons compiled) ~2 min; a 2x slower machine fits. */
const BOUNDS_MS = { pack: 3 * 60_000, install: 8 * 60_000 };

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
  const lab = new Lab();
  let project: string;
  let installLog: string;
  after(() => lab.teardown());

  before(async function () {
    this.timeout(BOUNDS_MS.pack + BOUNDS_MS.install + 60_000);
    const work = await lab.tempDir();
    const packs = join(work, 'packs');
    await mkdir(packs);
    const tarballs = await packWorkspaces(packs, BOUNDS_MS.pack, NATIVE_WORKSPACES);
    const upstream = (await runOrThrow('npm', ['config', 'get', 'registry'], { env: envWithoutNpm(), cwd: work })).stdout.trim();

    project = join(work, 'project');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'from-source', version: '1.0.0', private: true, type: 'module' }),
    );
    await writeFile(join(project, 'probe.mjs'), PROBE);
    const userconfig = join(work, 'npmrc');
    await writeFile(userconfig, `registry=${upstream}\nupdate-notifier=false\nfund=false\naudit=false\n`);
    const globalconfig = join(work, 'npmrc-global');
    await writeFile(globalconfig, '');
    await mkdir(join(work, 'home'));
    const env = {
      ...isolatedNpmEnv({
        path: process.env.PATH ?? '',
        home: join(work, 'home'),
        userconfig,
        globalconfig,
        cache: join(work, 'npm-cache'),
      }),
      ...Object.fromEntries(
        Object.entries(envWithoutNpm()).filter(([k]) => /^(NODE_EXTRA_CA_CERTS|SSL_CERT_\w+|https?_proxy|no_proxy)$/i.test(k)),
      ),
      // node-gyp-build compiles even where a prebuild matches; node-gyp uses this Node's headers.
      npm_config_build_from_source: 'true',
      npm_config_nodedir: resolve(process.execPath, '../..'),
    };
    const r = await run('npm', ['install', '--foreground-scripts', ...tarballs.values()], {
      env,
      cwd: project,
      timeoutMs: BOUNDS_MS.install,
    });
    installLog = r.stdout + r.stderr;
    if (r.code !== 0)
      throw new Error(`npm install exited with ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}:\n${installLog.slice(-6000)}`);
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
