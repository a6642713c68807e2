// A caged command's last packets reach their peer after it exits: wirecage
// keeps the cage's network (--linger, default 2 s) while the TCP connections
// the command closed still owe their peer data or a FIN, and its data plane
// sends what the TUN queue holds when it closes. A peer that never answers
// costs the linger bound, not a hang. wirecage runs in the lab's client
// namespace; the receiver (fixtures/tail-receiver.mjs) listens on the
// wireguard-go server's tunnel address, the caged sender is
// fixtures/tail-sender.mjs.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverPeer, spawnWirecage, startFixture, wirecage, writeWgQuick } from '../lib/cage.js';
import { cageSuite } from '../lib/cage-suite.js';
import type { LabProcess } from '../lib/process.js';
import { childrenOf, statusField } from '../lib/proc.js';
import { waitFor } from '../lib/wait.js';

const SENDER = fileURLToPath(new URL('./fixtures/tail-sender.mjs', import.meta.url));
const RECEIVER = fileURLToPath(new URL('./fixtures/tail-receiver.mjs', import.meta.url));
const BYTES = 4 << 20;
/**
 * Datagrams sent in one burst: below the TUN queue's 500, so the cage's kernel drops none, and
 * within the receiver's default socket buffer (212992 bytes, ~800 per small datagram), so the
 * lab's kernel drops none while the receiver waits for a CPU.
 */
const DATAGRAMS = 200;
const DEFAULT_LINGER_MS = 2_000;
/** wirecage's own teardown after the linger (data plane, namespace), on a machine twice as slow as ours. */
const TEARDOWN_MARGIN_MS = 3_000;
/** The exit status the caged sender picks for a peer that never answers: it must come out as wirecage's. */
const SENDER_CODE = 3;

/** The pid of a process of the machine that runs with exactly this command line (words joined by spaces, argv[0] aside). */
function pidRunning(line: string): number | undefined {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, -1).join(' ') === line) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The init of the cage `root` (a pid outside) started: pid 1 of its own namespace, below `root`. */
function cageInitBelow(root: number): number | undefined {
  const descends = (pid: number): boolean => {
    for (let p = pid; p > 1; p = Number(statusField(p, 'PPid'))) if (p === root) return true;
    return false;
  };
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (/\s1$/.test(statusField(Number(d), 'NSpid')) && descends(Number(d))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Whether every child of `pid` has ended (zombies not reaped yet count as ended). */
function childrenEnded(pid: number): boolean {
  return childrenOf(pid).every((c) => {
    try {
      return statusField(c, 'State').startsWith('Z');
    } catch {
      return true;
    }
  });
}

describe('wirecage run: a command that sends and exits at once', function () {
  this.timeout(120_000);
  const t = cageSuite('linger');
  let port = 7401;
  const running: LabProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
  });

  async function receiver(mode: 'tcp' | 'udp'): Promise<{ proc: LabProcess; port: number }> {
    const p = port++;
    const proc = await startFixture(t.srv.ns, RECEIVER, [mode, t.srv.v4, String(p)]);
    running.push(proc);
    return { proc, port: p };
  }

  /** The caged sender's "sent BYTES SHA256", and the receiver's "eof BYTES SHA256" once it saw the FIN. */
  async function deliveredStream(args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
    const { proc, port } = await receiver('tcp');
    const r = await wirecage(t.c.client, [...args, '--', process.execPath, SENDER, 'tcp', t.srv.v4, String(port), String(BYTES)], {
      env,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const sent = /^sent (\d+) ([0-9a-f]{64})$/m.exec(r.stdout);
    assert.ok(sent, `the sender said: ${r.stdout}${r.stderr}`);
    // The cage is gone, so nothing more can come from it; the lab's side may still be handing over
    // what its kernel already acknowledged.
    const eof = await waitFor(() => /^eof (\d+) ([0-9a-f]{64})$/m.exec(proc.output()), {
      what: `the receiver to see the FIN after ${BYTES} bytes`,
      timeoutMs: 5_000,
      describe: () => proc.describe(),
    });
    assert.equal(Number(eof[1]), BYTES, `bytes received before the FIN: ${proc.output()}`);
    assert.equal(eof[2], sent[2], 'SHA-256 of what arrived against what was sent');
  }

  for (const workers of [0, 2]) {
    it(`delivers all of ${BYTES} bytes and the FIN of a connection closed just before the exit (--workers ${workers})`, async () => {
      await deliveredStream(['-c', t.conf, '--workers', String(workers)]);
    });
  }

  it('delivers them from a named cage too (its holder ends through the same init)', async () => {
    const xdg = join(t.c.dir, 'xdg');
    await mkdir(xdg, { recursive: true, mode: 0o700 });
    await deliveredStream(['-c', t.conf, '--workers', '2', '--name', 'linger'], { ...process.env, XDG_RUNTIME_DIR: xdg });
  });

  for (const workers of [0, 2]) {
    it(`delivers all of ${DATAGRAMS} datagrams sent in a burst just before the exit (--workers ${workers})`, async () => {
      const { proc, port } = await receiver('udp');
      const r = await wirecage(t.c.client, [
        '-c',
        t.conf,
        '--workers',
        String(workers),
        '--',
        process.execPath,
        SENDER,
        'udp',
        t.srv.v4,
        String(port),
        String(DATAGRAMS),
      ]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, new RegExp(`^sent ${DATAGRAMS}$`, 'm'));
      await waitFor(() => proc.output().includes(`got ${DATAGRAMS}\n`), {
        what: `the receiver to get all ${DATAGRAMS} datagrams`,
        timeoutMs: 5_000,
        describe: () => proc.describe(),
      });
    });
  }

  describe('a peer that stops acknowledging (its data dropped by nftables in its namespace)', () => {
    const table = 'linger_blackhole';
    before(async () => {
      // SYN and ACKs pass (60 bytes at most), data segments and what follows them do not: the
      // connection opens, then the caged side's data and FIN are never acknowledged.
      await t.srv.ns.runOrThrow('nft', ['-f', '-'], {
        input: `table inet ${table} {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ip daddr ${t.srv.v4} tcp dport 7401-7499 ip length > 100 drop\n }\n}\n`,
      });
    });
    after(() => t.srv.ns.runOrThrow('nft', ['delete', 'table', 'inet', table]));

    /** Runs the sender that exits at once with SENDER_CODE; ms from its exit to wirecage's. */
    async function lingered(args: string[], conf = t.conf): Promise<number> {
      const { port } = await receiver('tcp');
      const r = await wirecage(t.c.client, [
        '-c',
        conf,
        ...args,
        '--',
        process.execPath,
        SENDER,
        'tcp',
        t.srv.v4,
        String(port),
        String(BYTES),
        '--exit-now',
        String(SENDER_CODE),
      ]);
      const ended = Date.now();
      assert.equal(r.code, SENDER_CODE, `wirecage exits with the command's status: ${r.stderr}${r.stdout}`);
      const exited = /^exiting (\d+)$/m.exec(r.stdout);
      assert.ok(exited, `the sender said: ${r.stdout}${r.stderr}`);
      return ended - Number(exited[1]);
    }

    it("exits after the linger bound (default 2 s), with the command's status, instead of waiting for it", async () => {
      const ms = await lingered([]);
      assert.ok(ms >= DEFAULT_LINGER_MS, `wirecage exited ${ms} ms after the command: it did not keep the cage for the bound`);
      assert.ok(ms < DEFAULT_LINGER_MS + TEARDOWN_MARGIN_MS, `wirecage exited ${ms} ms after the command`);
    });

    it('--linger 0, or Linger = 0 in the config file, tears the cage down at once', async () => {
      const ms = await lingered(['--linger', '0']);
      assert.ok(ms < DEFAULT_LINGER_MS, `wirecage exited ${ms} ms after the command with --linger 0`);
      const conf = await writeWgQuick(
        t.c.dir,
        'linger0.conf',
        { PrivateKey: t.key.privateKey, Address: `${t.v4}/32`, DNS: t.srv.v4, Linger: 0 },
        [serverPeer(t.srv)],
      );
      const fromFile = await lingered([], conf);
      assert.ok(fromFile < DEFAULT_LINGER_MS, `wirecage exited ${fromFile} ms after the command with Linger = 0`);
    });

    it("a SIGTERM while it lingers ends the wait at once, the status still the command's", async () => {
      const { port } = await receiver('tcp');
      const args = [t.srv.v4, String(port), String(BYTES), '--exit-now', String(SENDER_CODE)];
      const cage = spawnWirecage(t.c.client, ['-c', t.conf, '--linger', '600', '--', process.execPath, SENDER, 'tcp', ...args]);
      running.push(cage);
      const init = await waitFor(() => (cage.assertRunning(), cageInitBelow(cage.pid!)), {
        what: "the cage's init",
        timeoutMs: 20_000,
        describe: () => cage.describe(),
      });
      // Lingering: the sender has said it exits and has ended (a signal on its way to a process still
      // exiting would be lost with it, and is no caller's "stop" we could see).
      await waitFor(() => cage.output().includes('exiting ') && childrenEnded(init), {
        what: 'the caged sender to exit',
        timeoutMs: 20_000,
        describe: () => cage.describe(),
      });
      const signalled = Date.now();
      cage.child.kill('SIGTERM');
      const status = await cage.exited;
      const ms = Date.now() - signalled;
      assert.equal(status.code, SENDER_CODE, cage.describe());
      assert.ok(ms < TEARDOWN_MARGIN_MS, `wirecage exited ${ms} ms after SIGTERM`);
    });

    it("a SIGTERM that reaches the cage's init after the command ended, before init reaped it, is not lost: no wait", async () => {
      const { port } = await receiver('tcp');
      // The sender leaves its connection owing the peer and exits; then sh stops itself, so that
      // init can be frozen before sh ends into a zombie init cannot reap yet.
      const send = [process.execPath, SENDER, 'tcp', t.srv.v4, String(port), String(BYTES), '--exit-now', String(SENDER_CODE)];
      const script = `${send.join(' ')}; kill -STOP $$; exit ${SENDER_CODE}`;
      const cage = spawnWirecage(t.c.client, ['-c', t.conf, '--linger', '600', '--', 'sh', '-c', script]);
      running.push(cage);
      const state = (pid: number) => statusField(pid, 'State')[0];
      const sh = await waitFor(
        () => {
          cage.assertRunning();
          const pid = pidRunning(`-c ${script}`);
          return pid !== undefined && state(pid) === 'T' ? pid : undefined;
        },
        { what: 'sh to stop itself after the sender', timeoutMs: 20_000, describe: () => cage.describe() },
      );
      const init = Number(statusField(sh, 'PPid'));
      process.kill(init, 'SIGSTOP');
      await waitFor(() => state(init) === 'T', { what: "the cage's init to stop" });
      process.kill(sh, 'SIGCONT');
      await waitFor(() => state(sh) === 'Z', { what: 'sh to end into a zombie' });
      cage.child.kill('SIGTERM');
      // Passed along by stage 2 and the relay, it waits on the frozen init beside the SIGCHLD.
      await waitFor(() => (BigInt(`0x${statusField(init, 'ShdPnd')}`) & (1n << 14n)) !== 0n, {
        what: "SIGTERM pending on the cage's init",
        describe: () => cage.describe(),
      });
      const signalled = Date.now();
      process.kill(init, 'SIGCONT');
      const status = await cage.exited;
      const ms = Date.now() - signalled;
      assert.equal(status.code, SENDER_CODE, cage.describe());
      assert.ok(ms < TEARDOWN_MARGIN_MS, `wirecage exited ${ms} ms after init went on: it lingered`);
    });
  });
});
