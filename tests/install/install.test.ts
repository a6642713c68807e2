// Installs wirecage as a user would, from the packed tarballs alone: every
// shipped workspace is packed (prepack builds it, prebuilt addons and oclif
// manifest included), published to a local registry and installed with
// `npm install -g --prefix` with no compiler, make or python on PATH. Then an
// unprivileged user, whose PATH holds the prefix and nothing of the checkout,
// runs the installed commands: --version, help, keygen, doctor, and a caged
// curl through wireguard-go in a lab. The packing, the registry and the
// install are shared with the other install suite (installs.ts).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOrThrow, type ExecResult } from '../lib/exec.js';
import { Lab } from '../lib/netns.js';
import { cageLab, registerClient, serverPeer, startFixture, writeWgQuick, cageKey, type CageLab } from '../lib/cage.js';
import { asUserArgs, createHome, createTestUser, openTunToEveryone, type TestUser } from '../lib/test-user.js';
import { INSTALL_BOUNDS_MS, type InstalledCopy } from './install-global.js';
import { globalInstall, installTimings } from './installs.js';
import { assertNoBuildTools, onHostPath } from './min-path.js';
import { REPO_ROOT } from './pack.js';
import { RELEASE_BOUNDS_MS } from './release.js';

const DNS_SERVER = fileURLToPath(new URL('../cage/fixtures/dns-server.mjs', import.meta.url));
const HTTP_SERVER = fileURLToPath(new URL('../cage/fixtures/http-server.mjs', import.meta.url));
const ARCH_DIR = `${process.platform}-${process.arch}`;

/** Every installed copy of a package (a global install nests each top-level package's own tree). */
async function installedCopies(prefix: string, name: string): Promise<string[]> {
  const top = join(prefix, 'lib/node_modules');
  const copies: string[] = [];
  for (const pkg of await readdir(top)) {
    const dir = join(top, pkg, 'node_modules', name);
    if (existsSync(dir)) copies.push(dir);
  }
  return copies;
}

describe('install: the packed tarballs, installed without a compiler, used by an unprivileged user', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let installed: InstalledCopy;
  let c: CageLab;
  let user: TestUser & { home: string };
  let userEnv: NodeJS.ProcessEnv;
  let ip: string;
  let setpriv: string;
  const version = async (dir: string) =>
    (JSON.parse(await readFile(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { version: string }).version;
  after(() => lab.teardown());

  before(async function () {
    // Packing (natives, then the rest), the registry and publishing, then npm install.
    const { pack, fetch, registryStart, publish } = RELEASE_BOUNDS_MS;
    this.timeout(2 * pack + fetch + registryStart + 2 * publish + INSTALL_BOUNDS_MS);
    installed = await globalInstall();
    console.log(`      install timings: ${installTimings()}`);
  });

  before(async () => {
    ip = await onHostPath('ip');
    setpriv = await onHostPath('setpriv');
    c = await cageLab(lab);
    const u = await createTestUser(lab, `${lab.id}u`);
    const home = await createHome(lab, u);
    user = { ...u, home };
    await openTunToEveryone(lab);
    const runtime = join(home, 'run');
    await mkdir(runtime, { mode: 0o700 });
    await chown(runtime, u.uid, u.gid);
    userEnv = {
      PATH: `${join(installed.prefix, 'bin')}:${installed.minBin}`,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_RUNTIME_DIR: runtime,
    };
  });

  /** `args` as the test user (no groups, no capabilities) in the lab's client namespace, from its home. */
  function asUser(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return run(ip, ['netns', 'exec', c.client.name, setpriv, ...asUserArgs(user).slice(1), ...args], {
      env: userEnv,
      cwd: user.home,
      timeoutMs: opts.timeoutMs ?? 30_000,
      input: opts.input,
    });
  }

  it('installed prebuilt addons and helpers, compiled nothing, and reached no build tool', async () => {
    await assertNoBuildTools(installed.minBin);
    for (const [name, files] of [
      ['@wirecage/netns', ['netns.napi.glibc.node', 'wirecage-cage', 'wirecage-hold', 'wirecage-join', 'wirecage-userns']],
      ['@wirecage/tun', ['tun.napi.glibc.node']],
    ] as const) {
      const copies = await installedCopies(installed.prefix, name);
      assert.equal(copies.length, 2, `${name} should be installed under wirecage and wirecagesrv`);
      for (const dir of copies) {
        assert.deepEqual((await readdir(join(dir, 'prebuilds', ARCH_DIR))).sort(), [...files].sort(), dir);
        for (const f of files) {
          const { mode } = await stat(join(dir, 'prebuilds', ARCH_DIR, f));
          assert.equal(mode & 0o555, 0o555, `${f} of ${dir} is not readable and executable by all`);
        }
        assert.equal(existsSync(join(dir, 'build')), false, `${dir} was built from source`);
      }
    }
    const [sqlite] = await installedCopies(installed.prefix, 'better-sqlite3');
    assert.ok(sqlite, 'better-sqlite3 is not installed under wirecagesrv');
    assert.deepEqual(await readdir(join(sqlite, 'build')), ['Release'], 'better-sqlite3 was built from source');
    assert.deepEqual(await readdir(join(sqlite, 'build/Release')), ['better_sqlite3.node']);
    assert.equal(installed.betterSqlite3Downloads(), 1);
    for (const cli of ['wirecage', 'wirecagesrv']) {
      const file = join(installed.prefix, 'lib/node_modules', cli, 'oclif.manifest.json');
      const manifest = JSON.parse(await readFile(file, 'utf8')) as { commands: object };
      assert.ok(Object.keys(manifest.commands).length > 0, `${cli} has an empty oclif manifest`);
    }
    // Nothing installed names the checkout, so nothing can load from it.
    const grep = await run('grep', ['-rlF', REPO_ROOT, installed.prefix]);
    assert.equal(grep.code, 1, `files in the prefix name the checkout ${REPO_ROOT}:\n${grep.stdout}${grep.stderr}`);
  });

  it('runs wirecage and wirecagesrv from the prefix: --version', async () => {
    const which = await asUser(['sh', '-c', 'command -v wirecage; command -v wirecagesrv']);
    assert.equal(which.stdout, `${join(installed.prefix, 'bin/wirecage')}\n${join(installed.prefix, 'bin/wirecagesrv')}\n`);
    const w = await asUser(['wirecage', '--version']);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, new RegExp(`^wirecage/${await version('packages/cli')} ${ARCH_DIR} node-v${process.versions.node}\\n$`));
    const s = await asUser(['wirecagesrv', '--version']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, new RegExp(`^wirecagesrv/${await version('apps/wirecagesrv')} ${ARCH_DIR} `));
  });

  it('wirecage help run', async () => {
    const r = await asUser(['wirecage', 'help', 'run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^USAGE\n {2}\$ wirecage run /m);
    assert.match(r.stdout, /^FLAGS\n/m);
  });

  it("wirecage keygen: a key on stdout, or a 0600 file in a 0700 directory of the user's", async () => {
    const out = await asUser(['wirecage', 'keygen']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^[A-Za-z0-9+/]{43}=\n$/);

    const dir = join(userEnv.XDG_CONFIG_HOME!, 'wirecage/keys');
    const file = join(dir, 'install-test.key');
    const r = await asUser(['wirecage', 'keygen', '--out', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'keygen --out also printed the key');
    for (const [path, mode] of [
      [dir, 0o700],
      [file, 0o600],
    ] as const) {
      const st = await stat(path);
      assert.deepEqual([st.mode & 0o777, st.uid, st.gid], [mode, user.uid, user.gid], path);
    }
    // wireguard-tools agrees on the public key, so the key is a real WireGuard key.
    const key = await readFile(file, 'utf8');
    const mine = await asUser(['wirecage', 'pubkey'], { input: key });
    assert.equal(mine.code, 0, mine.stderr);
    const theirs = await runOrThrow('wg', ['pubkey'], { input: key });
    assert.equal(mine.stdout, theirs.stdout);
  });

  it('wirecage doctor: every check passes for the user', async () => {
    const r = await asUser(['wirecage', 'doctor']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok +user namespaces: /m);
    assert.match(r.stdout, /^ok +\/dev\/net\/tun: /m);
    assert.doesNotMatch(r.stdout, /^FAIL/m);
  });

  it('wirecage run -c: a caged curl fetches a page by name through wireguard-go', async () => {
    const srv = c.servers[0]!;
    const dns = await startFixture(srv.ns, DNS_SERVER, [srv.v4, `web.lab=${srv.v4}`]);
    await startFixture(srv.ns, HTTP_SERVER, [srv.v4, '8080', 'hello from the installed wirecage']);
    const key = await cageKey(c.dir, 'installed');
    const me = srv.clientAddress(2);
    await registerClient(srv, key, [me.v4]);
    const conf = await writeWgQuick(user.home, 'work.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [
      serverPeer(srv),
    ]);
    await chown(conf, user.uid, user.gid);

    const r = await asUser(['wirecage', 'run', '-c', conf, '--', '/usr/bin/curl', '-sS', '--max-time', '5', 'http://web.lab:8080/']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, 'hello from the installed wirecage\n');
    assert.match(dns.output(), /^query web\.lab 1$/m, 'the name was not resolved by the lab DNS server behind the tunnel');
    const peer = (await srv.wg.dump()).peers.find((p) => p.publicKey === key.publicKey);
    assert.ok(peer?.latestHandshake, 'wireguard-go saw no handshake from the cage');
  });
});
