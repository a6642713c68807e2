// A tunnel that heals (issue 14): stage 2 follows the server's name when
// handshakes stop, and starts a handshake as soon as the host's network
// changes, while the caged command keeps its sockets.
//
// The lab (lib/heal-lab.ts): wirecage runs in `cli`; two wireguard-go servers
// A and B with the same keys and tunnel address sit behind two veths; both
// route to `web`, which serves a file, so a TCP connection to web outlives the
// move from A to B. The endpoint's name lives in the hosts file `ip netns
// exec` binds over /etc/hosts for `cli` (lib/lab-hosts.ts): the host's
// resolver as stage 2 sees it, changed in place, never the machine's own.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, type Netns } from '../lib/netns.js';
import { WIRECAGE_BIN, spawnWirecage, startFixture, wirecage, writeWgQuick, type CageKey } from '../lib/cage.js';
import { HEAL_CAGE_ADDRESS as CAGE_ADDRESS, HEAL_PORT as PORT, HEAL_WEB as WEB, healLab, type HealServer } from '../lib/heal-lab.js';
import type { LabHosts } from '../lib/lab-hosts.js';
import type { LabProcess } from '../lib/process.js';
import { waitFor } from '../lib/wait.js';
import { silentLogger } from '@wirecage/wg-engine';
// A suspend cannot be made in a test: the detector stage 2 runs is driven with a wall clock that jumps.
import { watchClockJumps } from '../../packages/cli/dist/cage/heal-wake.js';

const NAME = 'wg.heal.test';

// Serves one file to every GET; prints a line once it listens (startFixture waits for it).
const FILE_SERVER = `
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
const [host, port, file] = process.argv.slice(2);
createServer((req, res) => {
  res.writeHead(200, { 'content-length': statSync(file).size });
  createReadStream(file).pipe(res);
}).listen(Number(port), host, () => process.stdout.write('listening\\n'));
`;

describe('wirecage run: a tunnel that heals', function () {
  this.timeout(150_000);
  const lab = new Lab();
  let cli: Netns;
  let web: Netns;
  let a: HealServer;
  let b: HealServer;
  let dir: string;
  let key: CageKey;
  let hosts: LabHosts;
  after(() => lab.teardown());

  /** Points NAME at `address` for stage 2's resolver. */
  const resolveTo = (address: string) => hosts.resolve(NAME, address);

  const cageConfig = (name: string, endpointHost: string) =>
    writeWgQuick(dir, name, { PrivateKey: key.privateKey, Address: `${CAGE_ADDRESS}/32`, DNS: '10.77.0.1' }, [
      { PublicKey: a.wg.publicKey, Endpoint: `${endpointHost}:${PORT}`, AllowedIPs: `10.77.0.0/24, ${WEB}/32` },
    ]);

  before(async () => {
    ({ cli, web, a, b, dir, key, hosts } = await healLab(lab));
    resolveTo(a.outer);
  });

  it('follows the endpoint name from A to B during a download; the command does not notice', async () => {
    const file = join(dir, 'payload.bin');
    const payload = randomBytes(8 << 20);
    writeFileSync(file, payload);
    const sha = createHash('sha256').update(payload).digest('hex');
    const script = join(dir, 'file-server.mjs');
    writeFileSync(script, FILE_SERVER);
    await startFixture(web, script, [WEB, '8080', file]);

    const conf = await cageConfig('name.conf', NAME);
    // 8 MiB at 1 MiB/s: still going when A stops, whatever the machine's speed.
    const fetch = `curl -sS --limit-rate 1M -o /tmp/payload http://${WEB}:8080/ && sha256sum /tmp/payload`;
    // The default sharded plane: its timers come from counters synced every 100 ms, and a dead server
    // must still be noticed 15 s (Keepalive + Rekey-Timeout) after the cage's last send, not when curl
    // sends again (plane.ts, syncPeer).
    const cage = spawnWirecage(cli, ['-c', conf, '--reresolve-after', '2', '--log-level', 'info', '--', 'sh', '-c', fetch]);
    const sent = async () => (await a.wg.dump()).peers.find((p) => p.publicKey === key.publicKey)?.txBytes ?? 0;
    await waitFor(
      async () => {
        cage.assertRunning();
        return (await sent()) > 1 << 20;
      },
      { what: 'a MiB of the download through A', timeoutMs: 30_000, intervalMs: 100, describe: () => cage.describe() },
    );

    // The server moves: A goes away, its name now gives B, and web answers through B.
    await a.wg.stop();
    resolveTo(b.outer);
    await web.ip(['route', 'replace', '10.77.0.0/24', 'via', b.towardWeb]);

    // WireGuard notices a dead peer 15 s after its last answer, then re-resolves 2 s later;
    // TCP's retransmission backoff adds up to about as much again (about 20 s in all here).
    const exit = await exitWithin(cage, 60_000);
    const out = cage.output();
    assert.deepEqual(exit, { code: 0, signal: null }, out);
    assert.ok(out.includes(`${sha}  /tmp/payload`), `the download differs from what web served:\n${out}`);
    const moved = / handshakes unanswered for \d+ s on (\S+); trying (\S+) \(1 of 1\)$/m.exec(out);
    assert.deepEqual(moved?.slice(1), [`${a.outer}:${PORT}`, `${b.outer}:${PORT}`], `no move from A to B logged:\n${out}`);
    const atB = (await b.wg.dump()).peers.find((p) => p.publicKey === key.publicKey);
    assert.ok(atB?.latestHandshake, 'no handshake with B');
    assert.ok(atB.txBytes > 1 << 20, `only ${atB.txBytes} bytes came through B`);
  });

  describe('with an IP-address endpoint (B)', () => {
    let cage: LabProcess;
    let tun: string;
    after(() => cage?.stop());

    before(async () => {
      resolveTo(b.outer);
      const conf = await cageConfig('literal.conf', b.outer);
      tun = `hl${lab.token}`;
      cage = spawnWirecage(cli, [
        '-c',
        conf,
        '--tun',
        tun,
        '--reresolve-after',
        '1',
        '--log-level',
        'debug',
        '--',
        'sh',
        '-c',
        'echo caged; exec sleep 120',
      ]);
      await waitFor(
        () => {
          cage.assertRunning();
          return cage.output().includes('caged\n');
        },
        { what: 'the caged command to start', timeoutMs: 20_000, describe: () => cage.describe() },
      );
    });

    const peerAtB = async () => {
      const p = (await b.wg.dump()).peers.find((x) => x.publicKey === key.publicKey);
      assert.ok(p, 'B lost its peer');
      return p;
    };

    it('starts a handshake within a second of a route flap in the host namespace', async () => {
      const first = (await peerAtB()).latestHandshake!.getTime();
      // wg reports handshakes in whole seconds: a new one must fall in a later second to be seen.
      await waitFor(() => Date.now() >= first + 1000, { what: 'the next second of the wall clock', timeoutMs: 3_000 });
      const rx = (await peerAtB()).rxBytes;
      const logged = cage.output().length;
      const t0 = Date.now();
      await cli.ip(['route', 'add', '192.0.2.0/24', 'via', b.outer]);
      await cli.ip(['route', 'del', '192.0.2.0/24']);
      await waitFor(
        async () => {
          const p = await peerAtB();
          return p.latestHandshake!.getTime() > first && p.rxBytes > rx;
        },
        { what: 'a handshake with B after the route flap', timeoutMs: 1_000, intervalMs: 20, describe: () => cage.describe() },
      );
      const took = Date.now() - t0;
      const since = cage.output().slice(logged);
      assert.match(since, /the host network changed: starting a handshake/);
      // One burst (a route added and removed), one handshake.
      const initiations = (since.match(/sending handshake initiation/g) ?? []).length;
      assert.equal(initiations, 1, `${initiations} initiations for one route flap (handshake after ${took} ms):\n${since}`);
    });

    it('never resolves an IP-address endpoint again, however long handshakes fail', async () => {
      // B forgets the cage: its initiations go unanswered from now on.
      await b.wg.removePeer(key.publicKey);
      await cli.ip(['route', 'add', '192.0.2.0/24', 'via', b.outer]);
      await waitFor(() => /its endpoint is an address, not a name: nothing to resolve again/.test(cage.output()), {
        what: 'stage 2 to find the handshakes failing',
        timeoutMs: 10_000,
        describe: () => cage.describe(),
      });
      // A look-up would have logged its answer ("still resolves to" at debug) or its failure.
      assert.doesNotMatch(cage.output(), / resolves to |cannot resolve/);
      const shown = await cli.run(process.execPath, [WIRECAGE_BIN, 'show', tun, '--json']);
      assert.equal(shown.code, 0, shown.stderr);
      const peers = (JSON.parse(shown.stdout) as { peers: { endpoint: string }[] }[])[0]!.peers;
      assert.equal(peers[0]!.endpoint, `${b.outer}:${PORT}`);
      await cli.ip(['route', 'del', '192.0.2.0/24']);
      await b.wg.setPeer({ publicKey: key.publicKey, allowedIps: [`${CAGE_ADDRESS}/32`] });
    });
  });

  for (const bad of ['-1', 'soon', '1.5', '86401']) {
    it(`refuses --reresolve-after ${bad} as a usage error naming the flag`, async () => {
      const conf = await cageConfig('usage.conf', NAME);
      const r = await wirecage(cli, ['-c', conf, '--reresolve-after', bad, '--', 'true']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--reresolve-after/);
    });
  }
});

describe('wirecage run: a resume from suspend, as stage 2 sees it', () => {
  it('takes the wall clock running ahead of the monotonic one for a wake-up, once', async () => {
    let offset = 0;
    let checks = 0;
    const jumps: number[] = [];
    const wallNow = () => {
      checks++;
      return Date.now() + offset;
    };
    const w = watchClockJumps((skew) => jumps.push(skew), { log: silentLogger, clockCheckMs: 20, wallNow });
    try {
      await waitFor(() => checks >= 5, { what: 'a few quiet checks' });
      assert.deepEqual(jumps, [], 'a jump while the clocks ran together');
      // 30 s of suspend: the wall clock moved on, the monotonic clock did not.
      offset = 30_000;
      await waitFor(() => jumps.length > 0, { what: 'the jump to be seen' });
      assert.ok(Math.abs(jumps[0]! - 30_000) < 1_000, `skew ${jumps[0]} ms`);
      const seen = checks;
      await waitFor(() => checks >= seen + 5, { what: 'more checks after the jump' });
      assert.equal(jumps.length, 1, `the same jump counted ${jumps.length} times`);
    } finally {
      w.stop();
    }
  });
});

async function exitWithin(proc: LabProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${proc.command} still running after ${ms} ms:\n${proc.describe()}`)), ms);
  });
  try {
    const { code, signal } = await Promise.race([proc.exited, timeout]);
    return { code, signal };
  } finally {
    clearTimeout(timer);
  }
}
