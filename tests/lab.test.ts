// Self-test of tests/lib: the lab must work, must be able to fail, and must leave nothing behind.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'mocha';
import { alive } from '@wirecage/netns/lab';
import { ExecError, run, runOrThrow } from './lib/exec.js';
import { Lab, withLab, type Netns } from './lib/netns.js';
import { WaitTimeoutError, waitFor } from './lib/wait.js';
import { generatePresharedKey, parseWgDump, startWireguardGo, uapiSocketPath, type WireguardGoPeer } from './lib/wireguard-go.js';

/** Live pids of processes whose argv mentions `needle` (read from /proc, nothing is signalled). */
function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes(needle)) && alive(Number(entry))) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

async function labNamespacesOnMachine(lab: Lab): Promise<string[]> {
  const list = (await runOrThrow('ip', ['netns', 'list'])).stdout;
  return list
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${lab.id}-`));
}

interface WgPair {
  a: WireguardGoPeer;
  b: WireguardGoPeer;
  psk: string;
}

/** Two wireguard-go peers in a and b, tunnel 198.19.0.0/24 + fd7a:c0de:ffff::/64, outer endpoints over the veth. */
async function wgPair(lab: Lab, a: Netns, b: Netns, outer: { a: string; b: string }): Promise<WgPair> {
  const psk = await generatePresharedKey(await lab.tempDir());
  const wa = await startWireguardGo(a, { listenPort: 51820, addresses: ['198.19.0.1/24', 'fd7a:c0de:ffff::1/64'], mtu: 1420 });
  const wb = await startWireguardGo(b, { listenPort: 51821, addresses: ['198.19.0.2/24', 'fd7a:c0de:ffff::2/64'], mtu: 1420 });
  // b learns a first: a's keepalive starts a handshake at once, and b would drop it (then a waits
  // the 5 s rekey timeout) if it did not know a yet.
  await wb.setPeer({
    publicKey: wa.publicKey,
    endpoint: wa.endpoint(outer.a),
    allowedIps: ['198.19.0.1/32', 'fd7a:c0de:ffff::1/128'],
    presharedKeyFile: psk,
  });
  await wa.setPeer({
    publicKey: wb.publicKey,
    endpoint: wb.endpoint(outer.b),
    allowedIps: ['198.19.0.2/32', 'fd7a:c0de:ffff::2/128'],
    presharedKeyFile: psk,
    persistentKeepalive: 25,
  });
  return { a: wa, b: wb, psk };
}

async function assertPing(ns: Netns, target: string): Promise<void> {
  const r = await ns.ping(target);
  assert.equal(r.code, 0, `ping ${target} from ${ns.name} failed: ${r.stdout}${r.stderr}`);
}

async function assertNoPing(ns: Netns, target: string): Promise<void> {
  const r = await ns.ping(target, { waitS: 1 });
  assert.notEqual(r.code, 0, `ping ${target} from ${ns.name} should have failed but got: ${r.stdout}`);
}

function assertRecentHandshake(at: Date | null): void {
  assert.ok(at !== null, 'no handshake recorded');
  const age = Date.now() - at.getTime();
  assert.ok(age > -2_000 && age < 60_000, `handshake at ${at.toISOString()} is not recent`);
}

describe('lab library', () => {
  describe('exec', () => {
    it('returns stdout, stderr and a non-zero code without throwing', async () => {
      const r = await run('sh', ['-c', 'echo out; echo err >&2; exit 3']);
      assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', code: 3, signal: null, timedOut: false });
    });

    it('feeds input on stdin', async () => {
      assert.equal((await run('cat', [], { input: 'via stdin' })).stdout, 'via stdin');
    });

    it('runOrThrow names the command and its stderr', async () => {
      await assert.rejects(runOrThrow('ls', ['/nonexistent dir']), (e: unknown) => {
        assert.ok(e instanceof ExecError);
        assert.match(e.message, /^ls '\/nonexistent dir' exited with code 2: .*No such file or directory/);
        return true;
      });
    });

    it('kills a command at its timeout', async () => {
      const start = Date.now();
      const r = await run('sleep', ['30'], { timeoutMs: 200 });
      assert.equal(r.timedOut, true);
      assert.equal(r.signal, 'SIGKILL');
      assert.ok(Date.now() - start < 5_000);
      await assert.rejects(runOrThrow('sleep', ['30'], { timeoutMs: 200 }), /sleep 30 timed out after 200 ms \(no stderr\)$/);
    });

    it('rejects when the command does not exist', async () => {
      await assert.rejects(run('wct-no-such-command', []), /cannot run wct-no-such-command: .*ENOENT/);
    });
  });

  describe('waitFor', () => {
    it('returns the first truthy value', async () => {
      let n = 0;
      assert.equal(await waitFor(() => (++n >= 3 ? n : false), { what: 'n to reach 3', intervalMs: 1 }), 3);
    });

    it('times out with what it waited for and the diagnostics', async () => {
      await assert.rejects(
        waitFor(() => false, { what: 'the impossible', timeoutMs: 50, intervalMs: 10, describe: () => 'extra detail' }),
        (e: unknown) => {
          assert.ok(e instanceof WaitTimeoutError);
          assert.match(e.message, /^timed out after \d+ ms \(\d+ checks\) waiting for the impossible\nextra detail$/);
          return true;
        },
      );
    });

    it('stops at once when the predicate throws', async () => {
      const start = Date.now();
      await assert.rejects(
        waitFor(
          () => {
            throw new Error('process died');
          },
          { what: 'x', timeoutMs: 5_000 },
        ),
        /process died/,
      );
      assert.ok(Date.now() - start < 1_000);
    });
  });

  describe('parseWgDump', () => {
    const pub = 'x'.repeat(43) + '=';
    const text =
      `PRIVATE\t${pub}\t51820\toff\n` +
      `${pub}\t(none)\t198.18.0.2:51821\t198.19.0.2/32,fd7a:c0de:ffff::2/128\t1700000000\t92\t180\t25\n` +
      `${pub}\tPSK\t(none)\t(none)\t0\t0\t0\toff\n`;

    it('parses interface and peers and drops the private key', () => {
      const d = parseWgDump(text);
      assert.deepEqual(d.interface, { publicKey: pub, listenPort: 51820, fwmark: null });
      assert.deepEqual(d.peers[0], {
        publicKey: pub,
        presharedKey: null,
        endpoint: '198.18.0.2:51821',
        allowedIps: ['198.19.0.2/32', 'fd7a:c0de:ffff::2/128'],
        latestHandshake: new Date(1_700_000_000_000),
        rxBytes: 92,
        txBytes: 180,
        persistentKeepalive: 25,
      });
      assert.equal(d.peers[1]!.latestHandshake, null);
      assert.deepEqual(d.peers[1]!.allowedIps, []);
      assert.equal(d.peers[1]!.presharedKey, 'PSK');
      assert.ok(!JSON.stringify(d).includes('PRIVATE'));
    });

    it('rejects malformed dumps', () => {
      assert.throws(() => parseWgDump(''), /empty output/);
      assert.throws(() => parseWgDump('a\tb\n'), /interface line has 2 fields/);
      assert.throws(() => parseWgDump(`P\t${pub}\tport\toff\n`), /expected a number, got "port"/);
    });
  });

  describe('a lab with two namespaces and two wireguard-go peers', () => {
    const lab = new Lab();
    let a: Netns;
    let b: Netns;
    let outer: { a: string; b: string; a6: string; b6: string };
    let wg: WgPair;
    after(() => lab.teardown());

    before(async () => {
      a = await lab.namespace('a');
      b = await lab.namespace('b');
      const v = await lab.veth(a, b);
      outer = { a: v.a.v4!, b: v.b.v4!, a6: v.a.v6!, b6: v.b.v6! };
    });

    it('names namespaces and interfaces within kernel limits', () => {
      assert.match(a.name, /^wct[0-9a-z]{5}-a$/);
      assert.ok(lab.uniqueIfname('xx').length <= 15);
    });

    it('pings across the veth over IPv4 and IPv6', async () => {
      assert.deepEqual(outer, { a: '198.18.0.1', b: '198.18.0.2', a6: 'fd7a:c0de:1::1', b6: 'fd7a:c0de:1::2' });
      await assertPing(a, outer.b);
      await assertPing(b, outer.a);
      await assertPing(a, outer.b6);
      await assertPing(b, outer.a6);
    });

    it('fails to ping an address that is not in the lab', async () => {
      await assertNoPing(a, '198.18.0.77');
      await assertNoPing(a, '198.19.255.1');
    });

    it('adds routes and runs commands inside a namespace', async () => {
      await a.addRoute('198.18.200.0/24', { via: outer.b });
      const routes = (await a.runOrThrow('ip', ['-4', 'route', 'show', '198.18.200.0/24'])).stdout;
      assert.match(routes, /198\.18\.200\.0\/24 via 198\.18\.0\.2 dev veth0a/);
      await assert.rejects(
        a.addRoute('198.18.201.0/24', { via: '198.18.99.1' }),
        /ip -n wct\w+-a -4 route add 198\.18\.201\.0\/24 via 198\.18\.99\.1 exited with code 2: Error: Nexthop has invalid gateway/,
      );
    });

    it('starts two wireguard-go peers that handshake and carry v4 and v6', async function () {
      this.timeout(30_000);
      wg = await wgPair(lab, a, b, outer);
      assert.ok(existsSync(uapiSocketPath(wg.a.ifname)));
      assert.equal(wg.a.listenPort, 51820);
      assert.equal(statSync(wg.a.keys.privateKeyFile).mode & 0o777, 0o600);
      assert.equal(statSync(wg.psk).mode & 0o777, 0o600);
      const keyText = readFileSync(wg.a.keys.privateKeyFile, 'utf8').trim();
      assert.ok(!readFileSync(`/proc/${wg.a.process.pid}/cmdline`, 'utf8').includes(keyText));

      await assertPing(a, '198.19.0.2');
      await assertPing(b, '198.19.0.1');
      await assertPing(a, 'fd7a:c0de:ffff::2');
      await assertPing(b, 'fd7a:c0de:ffff::1');

      const dump = await wg.a.dump();
      assert.equal(dump.peers.length, 1);
      const peer = dump.peers[0]!;
      assert.equal(peer.publicKey, wg.b.publicKey);
      assert.equal(peer.presharedKey, readFileSync(wg.psk, 'utf8').trim());
      assert.equal(peer.endpoint, '198.18.0.2:51821');
      assert.deepEqual(peer.allowedIps, ['198.19.0.2/32', 'fd7a:c0de:ffff::2/128']);
      assert.equal(peer.persistentKeepalive, 25);
      assertRecentHandshake(peer.latestHandshake);
      assert.ok(peer.rxBytes > 0 && peer.txBytes > 0, `rx ${peer.rxBytes} tx ${peer.txBytes}`);
      assertRecentHandshake(await wg.b.latestHandshake(wg.a.publicKey));
      assert.match(await wg.b.show(), new RegExp(`interface: ${wg.b.ifname}[\\s\\S]*private key: \\(hidden\\)`));
    });

    it('stops carrying traffic when the peer is removed, and resumes when it is set again', async function () {
      this.timeout(30_000);
      await wg.a.removePeer(wg.b.publicKey);
      assert.deepEqual((await wg.a.dump()).peers, []);
      await assertNoPing(a, '198.19.0.2');
      await assert.rejects(wg.a.latestHandshake(wg.b.publicKey), /has no peer/);
      // b still holds the preshared key, so a must too or b's handshake response fails to verify.
      await wg.a.setPeer({
        publicKey: wg.b.publicKey,
        endpoint: wg.b.endpoint(outer.b),
        allowedIps: ['198.19.0.2/32'],
        presharedKeyFile: wg.psk,
      });
      await assertPing(a, '198.19.0.2');
    });

    it('tears down processes that ignore SIGTERM and children that outlive their parent', async function () {
      this.timeout(20_000);
      const stubborn = a.spawn('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 1; done']);
      const orphaner = b.spawn('sh', ['-c', 'sleep 1000 & echo $!']);
      await waitFor(() => stubborn.output().includes('ready'), { what: 'stubborn shell to start', describe: () => stubborn.describe() });
      const exit = await orphaner.exited;
      assert.equal(exit.code, 0);
      const orphanPid = Number(orphaner.output().trim());
      assert.ok(alive(orphanPid), 'orphaned sleep should still be running');

      const sockets = [wg.a.socketPath, wg.b.socketPath];
      const dirs = readdirSync('/tmp').filter((d) => d.startsWith(`${lab.id}-`));
      assert.ok(dirs.length >= 2, `expected lab temp dirs, found ${dirs.join(', ')}`);

      await lab.teardown();

      assert.notEqual(stubborn.exitStatus, null);
      assert.equal(stubborn.exitStatus?.signal, 'SIGKILL');
      assert.ok(!alive(orphanPid), 'orphaned sleep survived teardown');
      assert.deepEqual(await labNamespacesOnMachine(lab), []);
      assert.deepEqual(lab.namespaceNames, []);
      assert.deepEqual(pidsMentioning(`wg${lab.token}`), []);
      for (const s of sockets) assert.ok(!existsSync(s), `${s} left behind`);
      assert.deepEqual(
        readdirSync('/tmp').filter((d) => d.startsWith(`${lab.id}-`)),
        [],
      );
      await lab.teardown();
    });
  });

  describe('a second lab right after, with IPv6 outer endpoints', () => {
    it('works and leaves nothing behind', async function () {
      this.timeout(30_000);
      let seen: { lab: Lab; sockets: string[] } | undefined;
      await withLab(async (lab) => {
        const a = await lab.namespace('a');
        const b = await lab.namespace('b');
        const v = await lab.veth(a, b, { v4: false });
        assert.equal(v.a.v4, null);
        const wg = await wgPair(lab, a, b, { a: v.a.v6!, b: v.b.v6! });
        await assertPing(a, '198.19.0.2');
        await assertPing(b, 'fd7a:c0de:ffff::1');
        const peer = (await wg.a.dump()).peers[0]!;
        assert.equal(peer.endpoint, '[fd7a:c0de:1::2]:51821');
        assertRecentHandshake(peer.latestHandshake);
        seen = { lab, sockets: [wg.a.socketPath, wg.b.socketPath] };
      });
      assert.ok(seen);
      assert.deepEqual(await labNamespacesOnMachine(seen.lab), []);
      assert.deepEqual(pidsMentioning(`wg${seen.lab.token}`), []);
      for (const s of seen.sockets) assert.ok(!existsSync(s), `${s} left behind`);
    });
  });

  describe('a lab whose setup fails half-way', () => {
    it('rejects bad names and still tears down what it made', async () => {
      const lab = new Lab();
      try {
        const a = await lab.namespace('a');
        await assert.rejects(lab.namespace('Bad_Label'), /must be 1-6 of \[a-z0-9\]/);
        await assert.rejects(lab.namespace('a'), /already has a namespace labelled a/);
        const b = await lab.namespace('b');
        await assert.rejects(lab.veth(a, b, { names: ['much-too-long-name', 'x'] }), /must be 1-15 chars/);
        await assert.rejects(startWireguardGo(a, { ifname: 'wg-much-too-long' }), /must be 1-15 chars/);
        // wireguard-go cannot take over a veth's name: it must exit, and the error must show why.
        const taken = lab.uniqueIfname('v');
        await lab.veth(a, b, { names: [taken, 'other'], v6: false });
        await assert.rejects(
          startWireguardGo(a, { ifname: taken }),
          /process ended early: ip netns exec \S+ wireguard-go -f \w+ \(exited with code 1\), output:\n.*Failed to create TUN device/s,
        );
        assert.ok(!existsSync(uapiSocketPath(taken)));
        assert.equal((await labNamespacesOnMachine(lab)).length, 2);
      } finally {
        await lab.teardown();
      }
      assert.deepEqual(await labNamespacesOnMachine(lab), []);
    });

    it("withLab tears down when the body throws, and keeps the body's error", async () => {
      let lab: Lab | undefined;
      await assert.rejects(
        withLab(async (l) => {
          lab = l;
          await l.namespace('x');
          throw new Error('body failed');
        }),
        /^Error: body failed$/,
      );
      assert.ok(lab);
      assert.deepEqual(await labNamespacesOnMachine(lab), []);
    });
  });
});
