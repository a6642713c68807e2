// better-sqlite3 (a wirecagesrv dependency) as a user's install gets it,
// without GitHub: its install script (prebuild-install) downloads a prebuilt
// binary from GitHub releases and compiles from source when that fails.
// Users reach GitHub; this machine does not. So the test serves the same kind
// of artifact (a prebuild-install tarball holding build/Release/
// better_sqlite3.node, made here from the checkout's own build) from
// 127.0.0.1, through prebuild-install's documented per-package mirror setting.
// The package itself is the version the checkout's lockfile holds, fetched
// from the registry and republished locally, so a newer 12.x on the registry
// cannot ask for a binary that is not there.
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { runOrThrow } from '../lib/exec.js';
import type { Lab } from '../lib/netns.js';
import { envWithoutNpm, REPO_ROOT } from './pack.js';

export interface BetterSqlite3Mirror {
  version: string;
  /** http://127.0.0.1:PORT, for npm_config_better_sqlite3_binary_host. */
  host: string;
  /** The package's tarball at `version`, to publish to the local registry. */
  packageTarball: string;
  /** How many times the binary was downloaded. */
  downloads: () => number;
}

/** The better-sqlite3 wirecagesrv resolves in the checkout: its directory and version. */
async function checkoutBetterSqlite3(): Promise<{ dir: string; version: string }> {
  const pkgJson = createRequire(join(REPO_ROOT, 'apps/wirecagesrv/package.json')).resolve('better-sqlite3/package.json');
  const { version } = JSON.parse(await readFile(pkgJson, 'utf8')) as { version: string };
  return { dir: dirname(pkgJson), version };
}

export async function betterSqlite3Mirror(lab: Lab, opts: { upstream: string; timeoutMs: number }): Promise<BetterSqlite3Mirror> {
  const { dir: checkout, version } = await checkoutBetterSqlite3();
  const work = await lab.tempDir();
  const binary = join(checkout, 'build/Release/better_sqlite3.node');
  await stat(binary).catch(() => {
    throw new Error(`${binary} is missing: the checkout's better-sqlite3 is not built (npm ci builds it)`);
  });

  // prebuild-install's name for it (util.js urlTemplate: {name}-v{version}-{runtime}-v{abi}-{platform}{libc}-{arch}, libc empty on glibc).
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const artifact = join(work, name);
  await mkdir(join(work, 'pkg/build/Release'), { recursive: true });
  await runOrThrow('cp', [binary, join(work, 'pkg/build/Release/')]);
  await runOrThrow('tar', ['-czf', artifact, '-C', join(work, 'pkg'), 'build']);

  const cache = join(work, 'npm-cache');
  const r = await runOrThrow(
    'npm',
    ['pack', `better-sqlite3@${version}`, '--json', '--pack-destination', work, '--registry', opts.upstream],
    {
      cwd: work,
      env: { ...envWithoutNpm(), npm_config_cache: cache },
      timeoutMs: opts.timeoutMs,
    },
  );
  const [packed] = JSON.parse(r.stdout) as { filename: string }[];

  // prebuild-install asks for <host>/v<version>/<name> (tag prefix "v").
  const path = `/v${version}/${name}`;
  let downloads = 0;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    downloads++;
    res.writeHead(200, { 'content-type': 'application/gzip' });
    createReadStream(artifact).pipe(res);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  lab.onTeardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { version, host: `http://127.0.0.1:${port}`, packageTarball: join(work, packed!.filename), downloads: () => downloads };
}
