// A wirecagesrv fleet (issue 16): three nodes on one PostgreSQL registry
// (lib/srv-fleet.ts), with one private key, one pool, and every node's
// WireGuard endpoint in each answer. What is observed is each node's own
// WireGuard device and listeners (its /metrics, handshakes, connections),
// never only the registry: registrations on every node at once reach every
// device; one client's traffic goes through each node in turn; a forward
// listens on the node that holds its peer's session and moves with it; a
// removal on one node is refused by the others within a second; a node
// started amid registrations, a node that lost the database for a while, and
// a removal heard late all leave the devices as the registry says; a node
// carrying a cage's download is killed and the cage goes on through another
// (its forward with it), the node drops out of `wirecagesrv nodes`; /readyz
// says not ready once the database is gone.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnWirecage } from '../lib/cage.js';
import { Lab } from '../lib/netns.js';
import { apiRequest, setServerPeer, untilHandshakeRefused, wgClientUp } from '../lib/srv-client.js';
import {
  devicePeers,
  deviceAllowed4,
  FLEET_ADMIN,
  FLEET_GATEWAY4,
  FLEET_METRICS,
  fleetLab,
  killNode,
  nodeMetrics,
  peerSeries,
  startFleet,
  startNode,
  cutOffNode,
  escapeRe,
  type FleetLab,
  type FleetNode,
} from '../lib/srv-fleet.js';
import { startInternet, type InternetHost } from '../lib/srv-internet.js';
import { addServer, INET4, SRV_BIN, SRV_TOKEN, type Registration } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';
import { generateKeyPair, startWireguardGo, type WireguardGoPeer } from '../lib/wireguard-go.js';

/** POST /v1/register of `key` through node `n`'s API, with the registration token. */
function registerOn(n: FleetNode, key: string) {
  return apiRequest(n.side, 'POST', '/v1/register', [`Authorization: Bearer ${SRV_TOKEN}`], { client_public_key: key }, { base: n.api });
}

const REGISTER = fileURLToPath(new URL('./fixtures/fleet-register.mjs', import.meta.url));
const SERVICE = fileURLToPath(new URL('./fixtures/forwards-service.mjs', import.meta.url));
const REREGISTER = fileURLToPath(new URL('./fixtures/fleet-reregister.mjs', import.meta.url));
/** Forwards asked for at once before the late removal: changes the other nodes work through first. */
const REREGISTER_FORWARDS = 40;
/** wirecagesrv's default forwards per peer (DEFAULT_MAX_FORWARDS_PER_PEER): the rest of the burst is refused. */
const FORWARDS_PER_PEER = 32;
const REMOTE = fileURLToPath(new URL('./fixtures/forwards-client.mjs', import.meta.url));
const PEERS = 1000;
/** The most registered while node 3 restarts (the pool's room after PEERS). */
const RESTART_PEERS = 900;
const BIG = 8 << 20;
/**
 * The failover case's first download fetches /big this many times over one connection: far more
 * than the cage's TCP buffers take in ahead of a reader at 512 KiB/s (12 MiB seen), so the node
 * killed mid-download cuts it.
 */
const BEFORE_TIMES = 6;
const FORWARD_PORT = 28080;

/** The port of the service the caged program runs (forwards-service.mjs), published as PUBLISHED. */
const CAGED_SERVICE = 8090;
const PUBLISHED = 28090;

/**
 * The caged program of the failover case: a service it publishes; a download slowed to 512 KiB/s
 * (under way when its node dies; it gives up once it stalls); then downloads tried until one
 * completes (their SYNs are what the tunnel carries until it moves), its hash; and the shell lives on.
 */
const CAGED = (url: string) => `
${process.execPath} ${SERVICE} ${CAGED_SERVICE} 5390 &
d=$(mktemp -d)
curl -sS --fail-early --limit-rate 512K --speed-time 3 --speed-limit 1000 ${Array(BEFORE_TIMES).fill(`-o /dev/null ${url}`).join(' ')}; echo "before: curl $?"
tries=1
until curl -sS --connect-timeout 2 --speed-time 3 --speed-limit 1000 -o "$d/after" ${url}; do tries=$((tries + 1)); done
echo "after: $tries tries, $(sha256sum < "$d/after")"; rm -r "$d"; echo done
exec sleep 120
`;

/** An entry of `wirecagesrv nodes --json` (GET /v1/nodes). */
interface NodeResponse {
  name: string;
  endpoint: string;
  api: string;
  sessions: number;
  live: boolean;
}

/** An entry of GET /v1/peers, as far as read here. */
interface PeerEntry {
  client_public_key: string;
  client_address: string;
}

/** Elapsed seconds since `t`, for the timings printed. */
const since = (t: number) => `${((Date.now() - t) / 1000).toFixed(2)} s`;

describe('wirecagesrv fleet: three nodes on one PostgreSQL registry', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let f: FleetLab;
  let internet: InternetHost;
  let go: WireguardGoPeer;
  let reg: Registration;
  after(() => lab.teardown());

  before(async () => {
    const t = Date.now();
    f = await fleetLab(lab);
    internet = await startInternet(f.inet, INET4, BIG);
    await startFleet(f);
    go = await startWireguardGo(f.cli);
    console.log(`      lab, PostgreSQL and three nodes up in ${since(t)}`);
  });

  const node = (k: 1 | 2 | 3): FleetNode => f.nodes[k - 1]!;
  const describeAll = () => f.nodes.map((n) => n.proc?.describe() ?? `${n.name}: not started`).join('\n');
  const admin = [`Authorization: Bearer ${FLEET_ADMIN}`];

  /**
   * Points wireguard-go at `n` (a fresh session) and waits for the handshake; `point` false: it
   * points there already. (Pointing again at once would send a second initiation within the
   * responder's 20 ms flood limit, refused, and the retry comes 5 s later.)
   */
  async function sessionWith(n: FleetNode, point = true): Promise<void> {
    if (point) await setServerPeer(go, { ...reg, server_endpoint: n.endpoint });
    await waitFor(
      async () => {
        n.proc!.assertRunning();
        await f.cli.run('ping', ['-n', '-c', '1', '-W', '1', FLEET_GATEWAY4], { timeoutMs: 3000 });
        return go.latestHandshake(reg.server_public_key);
      },
      {
        what: `a handshake with ${n.name}`,
        timeoutMs: 15_000,
        intervalMs: 200,
        describe: async () => `${await go.show()}\n${describeAll()}`,
      },
    );
  }

  /** `wirecagesrv nodes ARGS --api <node 2's API>` in the client namespace, the admin token from its file. */
  const nodes = (args: string[]) =>
    f.cli.run(process.execPath, [SRV_BIN, 'nodes', ...args, '--api', node(2).api], {
      env: { PATH: process.env.PATH, HOME: f.dir, WIRECAGESRV_ADMIN_TOKEN_FILE: f.adminFile },
      timeoutMs: 30_000,
    });
  const nodesListed = async (args: string[] = []) => {
    const r = await nodes(['--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as NodeResponse[];
  };
  let killedAt = 0;
  /** The value of the series `series` (name and labels, as exposed) on `n`'s /metrics. */
  const fleetGauge = async (n: FleetNode, series: string) => {
    const m = new RegExp(`^${escapeRe(series)} (\\S+)$`, 'm').exec(await nodeMetrics(n));
    assert.ok(m, `${n.name} exposes no ${series}`);
    return Number(m[1]);
  };

  /** What a remote client in `inet` gets from `n`'s public `port`: the service's greeting, or an error. */
  const throughForward = async (n: FleetNode, port = FORWARD_PORT): Promise<string> =>
    (await f.inet.run(process.execPath, [REMOTE, 'tcp', n.public4, String(port), 'hello'], { timeoutMs: 10_000 })).stdout;
  /** Until the service answers through `n`'s public `port`, greeting with the address and port it sees: the remote client's own. */
  const greeting = (n: FleetNode, port = FORWARD_PORT, describe = describeAll) =>
    waitFor(
      async () => {
        const [me, reply] = (await throughForward(n, port)).split('|');
        return reply === `tcp ${me}\nhello`;
      },
      { what: `the service through ${n.name}'s port ${port}`, timeoutMs: 10_000, intervalMs: 100, describe },
    );
  /** Until `n` refuses connections to its public `port` (it does not listen). */
  const refused = (n: FleetNode, port = FORWARD_PORT, describe = describeAll) =>
    waitFor(async () => (await throughForward(n, port)) === 'error ECONNREFUSED', {
      what: `${n.name} to stop listening on ${port}`,
      timeoutMs: 5_000,
      intervalMs: 100,
      describe,
    });

  it(`${PEERS} registrations spread over the three nodes at once get ${PEERS} distinct addresses, and every node's device holds every peer`, async () => {
    const r = await f.cli.runOrThrow(process.execPath, [REGISTER, String(PEERS), '8', f.tokenFile, ...f.nodes.map((n) => n.api)], {
      timeoutMs: 90_000,
    });
    const answered = Date.now();
    const out = JSON.parse(r.stdout) as {
      peers: { key: string; api: string; address: string; address6: string }[];
      failures: string[];
      ms: number;
    };
    assert.deepEqual(out.failures.slice(0, 5), [], `${out.failures.length} registrations failed\n${describeAll()}`);
    assert.equal(out.peers.length, PEERS);
    assert.equal(new Set(out.peers.map((p) => p.address)).size, PEERS, 'two peers share an IPv4 address');
    assert.equal(new Set(out.peers.map((p) => p.address6)).size, PEERS, 'two peers share an IPv6 address');
    for (const n of f.nodes)
      assert.ok(out.peers.filter((p) => p.api === n.api).length >= Math.floor(PEERS / 3), `${n.name} answered fewer`);

    const counts = await waitFor(
      async () => {
        const c = await Promise.all(f.nodes.map(devicePeers));
        return c.every((x) => x === PEERS) && c;
      },
      { what: `${PEERS} peers on every node's device`, timeoutMs: 30_000, intervalMs: 100, describe: describeAll },
    );
    const converged = since(answered);
    assert.deepEqual(counts, [PEERS, PEERS, PEERS]);
    // Each device routes each peer's own address to it: the registry's answer, whichever node gave it.
    const want = new Map(out.peers.map((p) => [p.key, p.address.replace(/\/\d+$/, '/32')]));
    for (const n of f.nodes) assert.deepEqual(await deviceAllowed4(n), want, `${n.name}'s device differs from the answers`);
    console.log(
      `      ${PEERS} registrations in ${(out.ms / 1000).toFixed(2)} s (${Math.round((PEERS * 1000) / out.ms)}/s over 3 nodes); every device held them ${converged} after the last answer`,
    );
  });

  it('a client registered through node 1 moves traffic through node 1, node 2 and node 3', async () => {
    const r = await registerOn(node(1), go.publicKey);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    reg = r.body as unknown as Registration;
    assert.deepEqual(reg.server_endpoints, [node(1).endpoint, node(2).endpoint, node(3).endpoint]);
    await wgClientUp(node(1).side, go, reg);
    // The internet (and the forwards' remote client, later) through the tunnel.
    await f.cli.ip(['route', 'add', '10.99.1.0/24', 'dev', go.ifname]);
    for (const n of f.nodes) {
      const t = Date.now();
      // wgClientUp pointed it at node 1.
      await sessionWith(n, n !== node(1));
      const sent = async () => peerSeries(await nodeMetrics(n), 'wireguard_peer_transmit_bytes_total', go.publicKey) ?? 0;
      const before = await sent();
      const dl = await f.cli.run('sh', ['-c', `curl -sS --max-time 30 http://${INET4}:8080/big | sha256sum`], { timeoutMs: 40_000 });
      assert.equal(dl.stdout.split(' ')[0], internet.bigSha256, `${n.name}: ${dl.stderr}\n${describeAll()}`);
      assert.ok((await sent()) - before >= BIG, `${n.name} did not carry the download`);
      console.log(`      through ${n.name}: handshake and ${BIG >> 20} MiB in ${since(t)}`);
    }
  });

  it("a forward listens on the node holding its peer's session, moves to the node the peer moves to, and closes there when removed elsewhere", async () => {
    const service = f.cli.spawn(process.execPath, [SERVICE, '8080', '5353']);
    await waitFor(() => (service.assertRunning(), service.output().includes('ready')), { what: 'the service behind the forward' });
    await sessionWith(node(1));
    // Created through node 3, which does not hold the session: node 1 listens, on the change it hears of.
    const created = Date.now();
    const fw = await apiRequest(
      node(3).side,
      'POST',
      '/v1/portforward',
      admin,
      {
        client_public_key: go.publicKey,
        protocol: 'tcp',
        public_port: FORWARD_PORT,
        target_port: 8080,
      },
      { base: node(3).api },
    );
    assert.equal(fw.status, 201, JSON.stringify(fw.body));
    await greeting(node(1));
    console.log(`      node 1 forwards ${since(created)} after the forward was made on node 3`);
    assert.equal(await throughForward(node(2)), 'error ECONNREFUSED', 'node 2 listens without the session');
    assert.equal(await throughForward(node(3)), 'error ECONNREFUSED', 'node 3 listens without the session');

    const moved = Date.now();
    await sessionWith(node(2));
    await greeting(node(2));
    const follows = since(moved);
    await refused(node(1));
    assert.equal(await throughForward(node(3)), 'error ECONNREFUSED', 'node 3 listens without the session');
    console.log(`      the forward followed its peer to node 2 in ${follows} (new session to its first relayed connection)`);
    // Removed through node 3, which does not listen: node 2 closes it, on the change it hears of.
    const rm = await apiRequest(
      node(3).side,
      'DELETE',
      '/v1/portforward',
      admin,
      { protocol: 'tcp', public_port: FORWARD_PORT },
      { base: node(3).api },
    );
    assert.equal(rm.status, 200, JSON.stringify(rm.body));
    await refused(node(2));
    await service.stop();
  });

  it('a peer removed on node 3 is refused by node 1 and node 2 within a second', async () => {
    const holds = async (n: FleetNode) => peerSeries(await nodeMetrics(n), 'wireguard_peer_info', go.publicKey) !== null;
    for (const n of f.nodes) assert.ok(await holds(n), `${n.name} does not hold the peer before`);
    const rm = await apiRequest(node(3).side, 'DELETE', '/v1/register', admin, { client_public_key: go.publicKey }, { base: node(3).api });
    const removed = Date.now();
    assert.equal(rm.status, 200, JSON.stringify(rm.body));
    const gone = await Promise.all(
      [node(1), node(2)].map((n) =>
        waitFor(async () => !(await holds(n)) && Date.now() - removed, {
          what: `${n.name}'s device to drop the peer`,
          timeoutMs: 10_000,
          intervalMs: 10,
          describe: describeAll,
        }),
      ),
    );
    console.log(`      off node 1's device ${gone[0]} ms, off node 2's ${gone[1]} ms after node 3's 200`);
    for (const ms of gone) assert.ok(ms <= 1000, `a device dropped the peer ${ms} ms after the removal`);
    assert.ok(!(await holds(node(3))), "node 3's own device still holds the peer");
    for (const n of [node(1), node(2)]) {
      await untilHandshakeRefused(
        n.side,
        n.proc!,
        go,
        { ...reg, server_endpoint: n.endpoint },
        FLEET_METRICS,
        `the removed key at ${n.name}`,
      );
    }
  });

  it('a node started while the others register holds every peer at once, not only at its next reconcile', async () => {
    await node(3).proc!.stop();
    // Registrations on the other two all through node 3's start, stopped once it serves.
    const stop = join(f.dir, 'stop-registering');
    const registering = f.cli.spawn(
      process.execPath,
      [REGISTER, String(RESTART_PEERS), '1', f.tokenFile, '--stop-file', stop, node(1).api, node(2).api],
      { outputLimit: 1 << 20 },
    );
    await startNode(f, node(3));
    assert.ok(registering.running, `all ${RESTART_PEERS} registrations ended before node 3 had started: nothing raced its start`);
    await writeFile(stop, '');
    await waitFor(() => !registering.running, { what: 'the registrations', timeoutMs: 60_000, describe: () => registering.describe() });
    const finished = Date.now();
    const out = JSON.parse(registering.output()) as { peers: unknown[]; failures: string[] };
    assert.deepEqual(out.failures.slice(0, 5), [], registering.output().slice(0, 2000));
    assert.ok(out.peers.length > 0, 'no registration');
    // Every peer of the registry (as node 1 lists it) on node 3's device, within seconds: not at its reconcile 30 s on.
    const listed = await apiRequest(node(1).side, 'GET', '/v1/peers', admin, undefined, { base: node(1).api });
    const want = new Map((listed.body.peers as PeerEntry[]).map((p) => [p.client_public_key, `${p.client_address}/32`]));
    let missing = 0;
    await waitFor(
      async () => {
        const have = await deviceAllowed4(node(3));
        missing = [...want].filter(([k, a]) => have.get(k) !== a).length;
        return missing === 0 && have.size === want.size;
      },
      {
        what: "node 3's device to hold every registered peer",
        timeoutMs: 5_000,
        intervalMs: 200,
        describe: () => `${missing} of ${want.size} missing\n${node(3).proc!.describe()}`,
      },
    );
    console.log(
      `      node 3 restarted amid ${out.peers.length} registrations on nodes 1 and 2; its device held every peer ${since(finished)} after the last answer`,
    );
  });

  it('a peer registered while a node has lost the database reaches its device as soon as the node is back, by the reconcile after the gap', async () => {
    const newcomer = await generateKeyPair(f.dir, 'newcomer');
    const holds = async (n: FleetNode) => (await deviceAllowed4(n)).has(newcomer.publicKey);
    const cut = await cutOffNode(f, node(2));
    let restored = false;
    try {
      assert.ok(cut.ended >= 2, `only ${cut.ended} connections of node 2 ended (its pool and its listener)`);
      await waitFor(() => node(2).proc!.output().includes("lost the connection that hears other nodes' changes"), {
        what: 'node 2 to notice its change listener gone',
        timeoutMs: 10_000,
        describe: () => node(2).proc!.describe(),
      });
      // Node 1 registers over a connection it holds (a new one cannot be made now: retried).
      await waitFor(async () => (await registerOn(node(1), newcomer.publicKey)).status === 200, {
        what: 'a registration on node 1',
        timeoutMs: 10_000,
        intervalMs: 200,
        describe: describeAll,
      });
      await waitFor(() => holds(node(3)), { what: "node 3's device to hold the newcomer", timeoutMs: 5_000, describe: describeAll });
      // Node 2 has no connection at all: no change heard, no reconcile read.
      assert.equal(await holds(node(2)), false, 'node 2 heard of the newcomer without its database');
      await cut.restore();
      restored = true;
    } finally {
      if (!restored) await cut.restore();
    }
    const back = Date.now();
    await waitFor(() => holds(node(2)), {
      what: "node 2's device to hold the newcomer",
      timeoutMs: 10_000,
      intervalMs: 100,
      describe: describeAll,
    });
    console.log(`      node 2's device held the peer registered during its gap ${since(back)} after the database was back`);
    // By the reconcile after the gap (within a second of hearing again), not by the periodic one.
    const out = node(2).proc!.output();
    const at = (re: RegExp) => Date.parse(re.exec(out)?.[1] ?? 'NaN');
    const again = at(/^(\S+) wirecagesrv info: registry: hearing other nodes' changes again/m);
    const added = at(/^(\S+) wirecagesrv info: fleet: the reconcile put \d+ peer\(s\) registered on other nodes on the device$/m);
    assert.ok(
      added - again >= 0 && added - again < 1000,
      `added ${added - again} ms after the change listener was back:\n${out.slice(-3000)}`,
    );
  });

  it('a node whose database connections are cut while it registers peers goes on serving (503s meanwhile)', async () => {
    const registered = () =>
      (
        node(2)
          .proc!.output()
          .match(/ registered peer /g) ?? []
      ).length;
    const r0 = registered();
    const stop = join(f.dir, 'stop-registering-2');
    const registering = f.cli.spawn(process.execPath, [REGISTER, '400', '4', f.tokenFile, '--stop-file', stop, node(2).api], {
      outputLimit: 1 << 20,
    });
    await waitFor(() => registered() > r0 + 20, { what: 'registrations on node 2', describe: () => registering.describe() });
    const cut = await cutOffNode(f, node(2));
    await cut.restore();
    const r1 = registered();
    await waitFor(() => (node(2).proc!.assertRunning(), registered() > r1 + 20), {
      what: 'registrations on node 2 after the cut',
      timeoutMs: 15_000,
      describe: () => `${registering.describe()}\n${node(2).proc!.describe()}`,
    });
    await writeFile(stop, '');
    await waitFor(() => !registering.running, { what: 'the registrations', timeoutMs: 60_000, describe: () => registering.describe() });
    const out = JSON.parse(registering.output()) as { peers: { key: string; address: string }[]; failures: string[] };
    const not503 = node(2)
      .proc!.output()
      .split('\n')
      .filter((l) => l.includes('POST /v1/register:') && !l.includes('unreachable'));
    assert.deepEqual(
      out.failures.filter((l) => !l.includes(': 503 ')),
      [],
      not503.join('\n'),
    );
    const device = await deviceAllowed4(node(2));
    assert.deepEqual(
      out.peers.filter((p) => device.get(p.key) !== p.address.replace(/\/\d+$/, '/32')),
      [],
    );
  });

  it('a peer removed on node 3 and registered again on node 2 at once stays on every device, however late the removal is heard', async () => {
    const key = (await generateKeyPair(f.dir, 'again')).publicKey;
    assert.equal((await registerOn(node(1), key)).status, 200);
    await waitFor(async () => (await deviceAllowed4(node(2))).has(key), {
      what: "node 2's device to hold the peer",
      describe: describeAll,
    });
    // Its forwards made on node 1 give the others a burst of changes to work through (each has a node read every peer and
    // forward); the removal on node 3 is heard behind them, after node 2 has registered the peer again.
    const r = await f.cli.runOrThrow(
      process.execPath,
      [REREGISTER, f.tokenFile, f.adminFile, key, String(REREGISTER_FORWARDS), '28300', node(1).api, node(3).api, node(2).api],
      { timeoutMs: 60_000 },
    );
    const out = JSON.parse(r.stdout) as { forwards: number[]; removed: number; registered: number; address: string };
    // Asked for at once, the forwards beyond the peer's limit are refused: the store's add is the arbiter, not the early count.
    const made = out.forwards.filter((s) => s === 201).length;
    assert.deepEqual(
      [made, out.forwards.length - made, out.removed, out.registered],
      [FORWARDS_PER_PEER, REREGISTER_FORWARDS - FORWARDS_PER_PEER, 200, 200],
      r.stdout,
    );
    assert.deepEqual([...new Set(out.forwards)].sort(), [201, 409], r.stdout);
    const address = out.address.replace(/\/\d+$/, '/32');
    // A peer registered on node 3 after all that: once node 2 holds it, node 2 has applied every change before it.
    const marker = (await generateKeyPair(f.dir, 'marker')).publicKey;
    assert.equal((await registerOn(node(3), marker)).status, 200);
    await waitFor(async () => (await deviceAllowed4(node(2))).has(marker), {
      what: 'node 2 to work through the burst',
      timeoutMs: 15_000,
      intervalMs: 100,
      describe: describeAll,
    });
    for (const n of f.nodes) {
      await waitFor(async () => (await deviceAllowed4(n)).get(key) === address, {
        what: `${n.name}'s device to hold the peer registered again (${address})`,
        timeoutMs: 5_000,
        intervalMs: 100,
        describe: () =>
          n
            .proc!.output()
            .split('\n')
            .filter((l) => l.includes(key.slice(0, 8)))
            .join('\n'),
      });
    }
  });

  it('`wirecagesrv nodes` lists the three live nodes, each with its endpoint and API', async () => {
    const listed = await nodesListed();
    assert.deepEqual(
      listed.map((n) => [n.name, n.endpoint, n.api, n.live]),
      f.nodes.map((n) => [n.name, n.endpoint, n.api, true]),
    );
    assert.equal(await fleetGauge(node(3), 'wirecagesrv_fleet_nodes'), 3, "node 3's fleet gauge");
    const table = await nodes([]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout.split('\n')[0]!, /^NAME +ENDPOINT +API +SESSIONS +STARTED +HEARTBEAT +LIVE$/);
    assert.equal(table.stdout.trimEnd().split('\n').length, 4, table.stdout);
  });

  it("kill -9 of the node carrying a cage's download: the cage goes on through another node, its program keeps running, its forward follows", async () => {
    const peerKeys = async () => {
      const r = await apiRequest(node(2).side, 'GET', '/v1/peers', admin, undefined, { base: node(2).api });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return new Set((r.body.peers as { client_public_key: string }[]).map((p) => p.client_public_key));
    };
    const known = await peerKeys();
    await addServer({ srvAddr: node(1).addr, env: f.env }, 'fleet');
    const cage = spawnWirecage(
      f.cli,
      [
        'fleet',
        '--reresolve-after',
        '2',
        '--log-level',
        'info',
        '--publish',
        `${PUBLISHED}:${CAGED_SERVICE}`,
        '--',
        'sh',
        '-c',
        CAGED(`http://${INET4}:8080/big`),
      ],
      {
        env: f.env,
      },
    );
    const key = await waitFor(async () => (cage.assertRunning(), [...(await peerKeys())].find((k) => !known.has(k))), {
      what: "the cage's registration",
      timeoutMs: 30_000,
      intervalMs: 200,
      describe: () => `${cage.describe()}\n${describeAll()}`,
    });
    const sent = async (n: FleetNode) => peerSeries(await nodeMetrics(n), 'wireguard_peer_transmit_bytes_total', key) ?? 0;
    const handshake = async (n: FleetNode) => peerSeries(await nodeMetrics(n), 'wireguard_peer_last_handshake_seconds', key) ?? 0;
    // Its published service, through node 1 alone (the node holding its session).
    const tell = () => `${cage.describe()}\n${describeAll()}`;
    await greeting(node(1), PUBLISHED, tell);
    for (const n of [node(2), node(3)]) await refused(n, PUBLISHED, tell);
    // The answer lists node 1 first (it registered there): it carries the download.
    await waitFor(async () => (cage.assertRunning(), (await sent(node(1))) > 1 << 20), {
      what: 'a MiB of the download through node 1',
      timeoutMs: 30_000,
      intervalMs: 100,
      describe: tell,
    });
    const others = [node(2), node(3)];
    const before = await Promise.all(others.map(handshake));
    const atKill = await sent(node(1));
    assert.ok(
      atKill < BEFORE_TIMES * BIG,
      `node 1 sent all of the first download before the kill (${atKill} bytes): the kill would not cut it`,
    );

    await killNode(node(1));
    const killed = Date.now();
    killedAt = killed;
    // WireGuard's own 15 s without an answer, --reresolve-after 2 s, then the next endpoint of the answer.
    const next = await waitFor(
      async () => {
        cage.assertRunning();
        const now = await Promise.all(others.map(handshake));
        return others.find((_, i) => now[i]! > before[i]!);
      },
      { what: 'a handshake with another node', timeoutMs: 45_000, intervalMs: 200, describe: () => `${cage.describe()}\n${describeAll()}` },
    );
    const failover = since(killed);
    await waitFor(() => (cage.assertRunning(), cage.output().includes('\ndone\n')), {
      what: 'the download after the failover',
      timeoutMs: 40_000,
      describe: () => `${cage.describe()}\n${describeAll()}`,
    });
    const out = cage.output();
    assert.match(out, new RegExp(`^after: \\d+ tries, ${internet.bigSha256}  -$`, 'm'), `the download after the failover differs:\n${out}`);
    // The same shell, started before: its first download ended with node 1 (curl failed), not the shell.
    assert.match(out, /^before: curl [1-9]\d*$/m, out);
    assert.equal(next, node(2), "the cage moved to the answer's second endpoint");
    assert.ok((await sent(node(2))) >= BIG, `node 2 carried only ${await sent(node(2))} bytes`);
    // The service started before the failover serves through node 2 now, not node 3.
    await greeting(node(2), PUBLISHED, tell);
    assert.equal(await throughForward(node(3), PUBLISHED), 'error ECONNREFUSED', 'node 3 listens without the session');
    console.log(
      `      node 1 had sent ${(atKill / (1 << 20)).toFixed(1)} MiB of the first download's ${(BEFORE_TIMES * BIG) >> 20} when killed`,
    );
    console.log(`      failover: ${failover} from the kill to node 2's handshake; the download after it ${since(killed)} after the kill`);
    await cage.stop();
  });

  it('a killed node drops out of `wirecagesrv nodes` once its heartbeats stop; the sessions moved with the cage', async () => {
    // Three heartbeats missed (15 s) after the last one (at most 5 s before the kill).
    const live = await waitFor(
      async () => {
        const l = await nodesListed();
        return !l.some((n) => n.name === 'node1') && l;
      },
      {
        what: 'node1 to drop out of the live nodes',
        timeoutMs: Math.max(1000, killedAt + 40_000 - Date.now()),
        intervalMs: 500,
        describe: describeAll,
      },
    );
    console.log(`      node1 dropped out of \`wirecagesrv nodes\` by ${since(killedAt)} after its kill`);
    assert.deepEqual(
      live.map((n) => [n.name, n.live, n.sessions]),
      [
        ['node2', true, 1],
        ['node3', true, 0],
      ],
    );
    // Node 3's gauges say the same.
    assert.equal(await fleetGauge(node(3), 'wirecagesrv_fleet_nodes'), 2, "node 3's fleet gauge");
    assert.equal(await fleetGauge(node(3), 'wirecagesrv_fleet_sessions{node="node2"}'), 1, "node 3's sessions gauge for node 2");
    // Its row stays (no clean stop said goodbye): --all shows it, not live.
    const all = await nodesListed(['--all']);
    assert.deepEqual(
      all.map((n) => [n.name, n.live]),
      [
        ['node1', false],
        ['node2', true],
        ['node3', true],
      ],
    );
  });

  it('/readyz of a node whose database is stopped says not ready', async () => {
    const probe = (n: FleetNode) => apiRequest(n.side, 'GET', '/readyz', [], undefined, { base: n.api });
    for (const n of [node(2), node(3)]) assert.equal((await probe(n)).status, 200, n.name);
    await f.pg.stop();
    const stopped = Date.now();
    for (const n of [node(2), node(3)]) {
      const r = await waitFor(async () => ((await probe(n)).status === 503 ? probe(n) : null), {
        what: `${n.name}'s /readyz to say not ready`,
        timeoutMs: 15_000,
        intervalMs: 200,
        describe: describeAll,
      });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error, 'not ready: registry', JSON.stringify(r.body));
      assert.match((r.body.checks as Record<string, string>).registry!, /^cannot write to the registry: /);
    }
    console.log(`      both live nodes not ready ${since(stopped)} after PostgreSQL stopped`);
  });
});
