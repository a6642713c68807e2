// spawnInCage's sealing options, as a library user gets them: the command's
// own user namespace (mounts locked for it), no capabilities, private tmpfs
// with a socket shared into it, a session of its own, read-only kernel files.
// The tests run as root; the command's namespace maps it onto nobody.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsError, spawnInCage, type CageSpawnOptions } from '../src/index.js';
import { loopbackNetns, runCaged } from './lab.js';

const NOBODY = '0 65534 1\n';
/** Uid 0 of its own namespace, nobody outside, with every sealing option on. */
const sealed: Partial<CageSpawnOptions> = {
  pidNamespace: true,
  userns: { uidMap: NOBODY, gidMap: NOBODY },
  noNewPrivs: true,
  newSession: true,
};

describe('spawnInCage: sealing', function () {
  const lab = loopbackNetns();
  let fd: number;
  let dir: string;

  before(() => {
    fd = lab.ns;
    dir = mkdtempSync(join(tmpdir(), `wct${process.pid}s`));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the command in a user namespace of its own, where what hides a file cannot be unmounted', async () => {
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'key\n');
    const r = await runCaged({
      ...sealed,
      file: 'sh',
      args: ['-c', `cat /proc/self/uid_map; umount ${secret} 2>&1; umount -l /proc 2>&1; cat ${secret}; echo end`],
      netnsFd: fd,
      hide: [secret],
    });
    assert.deepEqual(r.status, { code: 0, signal: null }, r.stderr);
    assert.match(r.stdout, /^\s+0\s+65534\s+1$/m);
    // Uid 0 with every capability of its namespace, yet the mounts are locked: EINVAL, not EPERM.
    assert.equal((r.stdout.match(/not mounted|Invalid argument/g) ?? []).length, 2, r.stdout);
    assert.doesNotMatch(r.stdout, /^key$/m);
    assert.match(r.stdout, /^end$/m);
  });

  it('empties and locks every capability set but the bounding one, with no_new_privs', async () => {
    const r = await runCaged({
      ...sealed,
      file: 'grep',
      args: ['-E', '^(Cap(Inh|Prm|Eff|Amb)|NoNewPrivs):', '/proc/self/status'],
      dropCapabilities: true,
      netnsFd: fd,
    });
    assert.deepEqual(r.status, { code: 0, signal: null }, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[1]),
      ['0000000000000000', '0000000000000000', '0000000000000000', '0000000000000000', '1'],
    );
  });

  it('shares a socket into a private tmpfs over its own directory, and nothing else that was there', async () => {
    const socketDir = join(dir, 'sockets');
    const shared = join(socketDir, 'shared.sock');
    const hidden = join(socketDir, 'hidden.sock');
    mkdirSync(socketDir);
    const servers: Server[] = [];
    for (const path of [shared, hidden]) {
      const s = createServer((c) => c.end('hi\n'));
      await new Promise<void>((resolve) => s.listen(path, resolve));
      servers.push(s);
    }
    try {
      const r = await runCaged({
        ...sealed,
        file: 'sh',
        args: ['-c', `ls ${socketDir}; test -S ${shared} && echo socket`],
        netnsFd: fd,
        tmpfs: [{ path: socketDir, mode: 0o755 }],
        mounts: [{ source: shared, target: shared, create: true }],
      });
      assert.deepEqual(r.status, { code: 0, signal: null }, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['shared.sock', 'socket']);
    } finally {
      for (const s of servers) s.close();
    }
  });

  it('makes the kernel-wide /proc files read-only', async () => {
    const r = await runCaged({
      ...sealed,
      file: 'sh',
      args: ['-c', 'exec 3>>/proc/sys/kernel/core_pattern'],
      readOnlyKernelFiles: true,
      netnsFd: fd,
    });
    assert.equal(r.status.code, 2, r.stderr);
    assert.match(r.stderr, /Read-only file system/);
  });

  it('gives the command a session of its own, without a controlling terminal', async () => {
    const r = await runCaged({
      ...sealed,
      file: 'sh',
      args: ['-c', 'echo "$$ $(ps -o sid= -p $$)"; (: > /dev/tty) 2>/dev/null || echo no-tty'],
      netnsFd: fd,
    });
    const [pid, sid] = r.stdout.trim().split('\n')[0]!.split(/\s+/);
    assert.equal(sid, pid);
    assert.match(r.stdout, /no-tty/);
  });

  it('names what it could not share', () => {
    let err: unknown;
    try {
      spawnInCage({
        ...sealed,
        file: 'true',
        netnsFd: fd,
        mounts: [{ source: join(dir, 'absent'), target: join(dir, 'absent'), create: true }],
      });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof NetnsError);
    assert.equal(err.syscall, 'open');
    assert.match(err.message, /opening .*absent to share it with the cage/);
  });

  it('refuses userns without pidNamespace: init writes the maps', () => {
    assert.throws(() => spawnInCage({ file: 'true', userns: { uidMap: NOBODY, gidMap: NOBODY } }), /userns needs pidNamespace/);
  });
});
