// A client fails over between the nodes of a fleet (issue 16): one endpoint
// name resolves to two wireguard-go servers with the same key and tunnel
// addressing (lib/heal-lab.ts, each masquerading what it forwards, as a
// fleet's nodes do). The node carrying a caged download is killed (SIGKILL);
// after WireGuard's own dead-peer time (Keepalive-Timeout + Rekey-Timeout,
// 15 s after the last answer) and --reresolve-after 2 s of unanswered
// handshakes, stage 2 moves the peer to the name's other address. The caged
// program started before the failover keeps running (its flow through the dead
// node ends with it) and a new download completes, hash-identical, through the
// other node; `show` and `ps` print the endpoint now in use.
//
// The name's two addresses come from two lines of the hosts file `ip netns
// exec` gives the client namespace, with `multi on` in its host.conf: glibc's
// files backend answers every line of a name only then (lib/lab-hosts.ts).
import assert from 'node:assert/strict';
import { WIRECAGE_BIN, spawnWirecage, writeWgQuick } from '../lib/cage.js';
import { HEAL_CAGE_ADDRESS, HEAL_PORT, HEAL_SERVER_ADDRESS, HEAL_WEB, healLab, type HealLab, type HealServer } from '../lib/heal-lab.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { startInternet } from '../lib/srv-internet.js';
import { waitFor } from '../lib/wait.js';

const NAME = 'fleet.failover.test';
const BIG = 8 << 20;

// The first download is slowed (1 MiB/s) so that it is under way when its node dies; it gives up
// once it stalls. Then downloads are tried until one completes: each try's SYNs are what the
// tunnel has to carry, so the peer keeps sending into the dead node until it moves.
const SCRIPT = (url: string) => `
curl -sS --limit-rate 1M --speed-time 3 --speed-limit 1000 -o /tmp/before ${url}; echo "before: curl $?"
tries=1
until curl -sS --connect-timeout 2 --speed-time 3 --speed-limit 1000 -o /tmp/after ${url}; do tries=$((tries + 1)); done
echo "after: $tries tries"; sha256sum /tmp/after; echo done
exec sleep 120
`;

describe('wirecage run: failing over between the nodes of a fleet', function () {
  this.timeout(90_000);
  const lab = new Lab();
  let l: HealLab;
  /** The node the first case killed. */
  let killed: HealServer | null = null;
  let bigSha256: string;
  after(() => lab.teardown());

  before(async () => {
    l = await healLab(lab, { nat: true });
    l.hosts.resolve(NAME, l.a.outer, l.b.outer);
    ({ bigSha256 } = await startInternet(l.web, HEAL_WEB, BIG));
  });

  it('moves to the other node when the one carrying a download is killed; the caged program goes on and downloads through it', async () => {
    const conf = await writeWgQuick(
      l.dir,
      'fleet.conf',
      { PrivateKey: l.key.privateKey, Address: `${HEAL_CAGE_ADDRESS}/32`, DNS: HEAL_SERVER_ADDRESS },
      [{ PublicKey: l.a.wg.publicKey, Endpoint: `${NAME}:${HEAL_PORT}`, AllowedIPs: `10.77.0.0/24, ${HEAL_WEB}/32` }],
    );
    const tun = `fo${lab.token}`;
    const cage = spawnWirecage(l.cli, [
      '-c',
      conf,
      '--tun',
      tun,
      '--reresolve-after',
      '2',
      '--log-level',
      'info',
      '--',
      'sh',
      '-c',
      SCRIPT(`http://${HEAL_WEB}:8080/big`),
    ]);
    const sentBy = async (s: HealServer) => (await s.wg.dump()).peers.find((p) => p.publicKey === l.key.publicKey)?.txBytes ?? 0;

    // Whichever address the resolver gave first carries the download: that node is the one to die.
    const [first, second] = await waitFor(
      async () => {
        cage.assertRunning();
        if ((await sentBy(l.a)) > 1 << 20) return [l.a, l.b];
        if ((await sentBy(l.b)) > 1 << 20) return [l.b, l.a];
        return null;
      },
      { what: 'a MiB of the download through one node', timeoutMs: 30_000, intervalMs: 100, describe: () => cage.describe() },
    );
    const secondHandshake = async () =>
      (await second.wg.dump()).peers.find((p) => p.publicKey === l.key.publicKey)?.latestHandshake ?? null;
    assert.equal(await secondHandshake(), null, 'the other node had a handshake before the failover');

    process.kill(first.wg.process.pid!, 'SIGKILL');
    await first.wg.process.exited;
    killed = first;
    const killedAt = Date.now();
    // 15 s of WireGuard's own, 2 s of --reresolve-after, a tick: about 17.5 s, bounded for a slower machine.
    await waitFor(secondHandshake, {
      what: 'a handshake with the other node',
      timeoutMs: 40_000,
      intervalMs: 100,
      describe: () => cage.describe(),
    });
    const failoverMs = Date.now() - killedAt;

    await waitFor(
      () => {
        cage.assertRunning();
        return cage.output().includes('\ndone\n');
      },
      { what: 'the download after the failover', timeoutMs: 30_000, describe: () => cage.describe() },
    );
    const out = cage.output();
    assert.ok(out.includes(`${bigSha256}  /tmp/after`), `the download after the failover differs from what web served:\n${out}`);
    // The same shell, started before the failover: its first download ended with the node, not the shell.
    assert.match(out, /^before: curl \d+$/m, out);
    const move = / handshakes unanswered for (\d+) s on (\S+); trying (\S+) \((\d) of 2\)$/m.exec(out);
    assert.ok(move, `no move logged:\n${out}`);
    assert.deepEqual(move.slice(2, 4), [`${first.outer}:${HEAL_PORT}`, `${second.outer}:${HEAL_PORT}`], out);
    assert.ok((await sentBy(second)) >= BIG, `only ${await sentBy(second)} bytes came through the other node`);
    await assertShownEndpoint(l, tun, `${second.outer}:${HEAL_PORT}`, cage);
    console.log(`      failover: ${(failoverMs / 1000).toFixed(1)} s from the kill to the other node's handshake`);
    await cage.stop();
  });

  it('starts through the next node when the first its name resolves to is down', async () => {
    const dead = killed ?? l.a;
    if (!killed) {
      process.kill(l.a.wg.process.pid!, 'SIGKILL');
      await l.a.wg.process.exited;
    }
    const alive = dead === l.a ? l.b : l.a;
    const name = `start.${NAME}`;
    l.hosts.resolve(name, dead.outer, alive.outer);
    const conf = await writeWgQuick(
      l.dir,
      'start.conf',
      { PrivateKey: l.key.privateKey, Address: `${HEAL_CAGE_ADDRESS}/32`, DNS: HEAL_SERVER_ADDRESS },
      [{ PublicKey: alive.wg.publicKey, Endpoint: `${name}:${HEAL_PORT}`, AllowedIPs: `10.77.0.0/24, ${HEAL_WEB}/32` }],
    );
    const cage = spawnWirecage(l.cli, [
      '-c',
      conf,
      '--log-level',
      'info',
      '--',
      'sh',
      '-c',
      `curl -sS -o /tmp/x http://${HEAL_WEB}:8080/big && sha256sum /tmp/x && echo done`,
    ]);
    // One Rekey-Timeout (5 s) on the dead node, then the live one: bounded for a slower machine.
    const bound = new Promise<null>((resolve) => setTimeout(resolve, 40_000, null).unref());
    const exit = await Promise.race([cage.exited, bound]);
    assert.ok(exit, `the cage did not finish within 40 s:\n${cage.describe()}`);
    const out = cage.output();
    assert.ok(out.includes(`${bigSha256}  /tmp/x`), out);
    assert.match(
      out,
      new RegExp(`handshakes unanswered for \\d+ s on ${dead.outer}:${HEAL_PORT}; trying ${alive.outer}:${HEAL_PORT} \\(2 of 2\\)`),
      out,
    );
  });
});

/** `show` and `ps` print the endpoint in use, the tunnel up again. */
async function assertShownEndpoint(l: HealLab, tun: string, endpoint: string, cage: LabProcess): Promise<void> {
  const shown = await l.cli.run(process.execPath, [WIRECAGE_BIN, 'show', tun, '--json']);
  assert.equal(shown.code, 0, shown.stderr);
  const peer = (JSON.parse(shown.stdout) as { peers: { endpoint: string }[] }[])[0]!.peers[0]!;
  assert.equal(peer.endpoint, endpoint, cage.describe());
  const ps = await l.cli.run(process.execPath, [WIRECAGE_BIN, 'ps', '--json']);
  assert.equal(ps.code, 0, ps.stderr);
  const row = (JSON.parse(ps.stdout) as { tun: string; endpoint: string; state: string }[]).find((r) => r.tun === tun);
  assert.deepEqual({ endpoint: row?.endpoint, state: row?.state }, { endpoint, state: 'up' });
}
