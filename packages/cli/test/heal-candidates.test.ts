// Where a peer fails over to (cage/heal-candidates.ts, heal-resolve.ts) and
// the endpoint list a server's answer gives (servers/server-endpoints.ts): the
// candidates' order, skipping the address that failed, cycling, IP literals,
// names that do not resolve, answers from servers older than server_endpoints
// (fresh and stored), and the move itself on a real engine peer. The resolver
// is given as a table here; tests/cage/failover.test.ts runs the host's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device, Endpoint, generatePrivateKey, keyToBase64, publicKeyOf, silentLogger, type Logger } from '@wirecage/wg-engine';
import { hasNames, nextCandidate, resolveCandidates, type Lookup } from '../src/cage/heal-candidates.js';
import { moveToNext } from '../src/cage/heal-resolve.js';
import type { HealPeer } from '../src/cage/heal.js';
import { EndpointListError, serverEndpoints, storedServerEndpoints } from '../src/servers/server-endpoints.js';
import { registrationToConfig, type Registration } from '../src/servers/register.js';
import { LEASE_STATE_VERSION, writeLeaseState } from '../src/servers/lease-state.js';
import { startCageHealing } from '../src/cage/heal-cage.js';
import type { CageSpec } from '../src/cage/spec.js';

const DNS: Record<string, string[]> = {
  'fleet.example': ['192.0.2.1', '192.0.2.2', '2001:db8::3'],
  'one.example': ['198.51.100.7'],
  // The fleet's first node under a name of its own too: one candidate, not two.
  'node1.example': ['192.0.2.1'],
};

function table(): { resolve: Lookup; asked: string[] } {
  const asked: string[] = [];
  const resolve: Lookup = (host) => {
    asked.push(host);
    const found = DNS[host];
    if (found) return Promise.resolve(found);
    return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
  };
  return { resolve, asked };
}

const texts = (list: Endpoint[]) => list.map((e) => e.toString());

describe('heal: the candidates a peer fails over to', () => {
  it('are every address of every endpoint, in order, each once; an IP literal is its own and never looked up', async () => {
    const { resolve, asked } = table();
    const c = await resolveCandidates(['fleet.example:51820', '203.0.113.9:51820', 'node1.example:51820', '[2001:db8::9]:51821'], resolve);
    assert.deepEqual(texts(c.list), [
      '192.0.2.1:51820',
      '192.0.2.2:51820',
      '[2001:db8::3]:51820',
      '203.0.113.9:51820',
      '[2001:db8::9]:51821',
    ]);
    assert.deepEqual(asked, ['fleet.example', 'node1.example']);
    assert.deepEqual(c.errors, []);
    assert.deepEqual(c.answers, ['fleet.example: 192.0.2.1, 192.0.2.2, 2001:db8::3', 'node1.example: 192.0.2.1']);
  });

  it('keep the others when one name does not resolve, and say which', async () => {
    const c = await resolveCandidates(['gone.example:51820', 'one.example:51820'], table().resolve);
    assert.deepEqual(texts(c.list), ['198.51.100.7:51820']);
    assert.deepEqual(c.errors, ['cannot resolve gone.example: ENOTFOUND']);
  });

  it('pass over the ones already tried in this outage, until every other one was', () => {
    const list = ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map((a) => Endpoint.of(a, 51820));
    const current = Endpoint.of('192.0.2.1', 51820);
    assert.equal(nextCandidate(current, list, new Set(['192.0.2.2:51820'])), 2);
    assert.equal(nextCandidate(current, list, new Set(['192.0.2.2:51820', '192.0.2.3:51820'])), 1);
    assert.equal(nextCandidate(null, list, new Set(['192.0.2.1:51820'])), 1);
  });

  it('follow the next one after the current, cycling, so the one that failed is skipped', () => {
    const list = ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map((a) => Endpoint.of(a, 51820));
    assert.equal(nextCandidate(Endpoint.of('192.0.2.1', 51820), list), 1);
    assert.equal(nextCandidate(Endpoint.of('192.0.2.2', 51820), list), 2);
    assert.equal(nextCandidate(Endpoint.of('192.0.2.3', 51820), list), 0);
  });

  it('start from the first when the current address is not among them (the name moved), or on another port', () => {
    const list = ['192.0.2.1', '192.0.2.2'].map((a) => Endpoint.of(a, 51820));
    assert.equal(nextCandidate(Endpoint.of('203.0.113.1', 51820), list), 0);
    assert.equal(nextCandidate(Endpoint.of('192.0.2.2', 51821), list), 0);
    assert.equal(nextCandidate(null, list), 0);
  });

  it('give nothing to try when the current address is the only one, or there is none', () => {
    const only = [Endpoint.of('192.0.2.1', 51820)];
    assert.equal(nextCandidate(Endpoint.of('192.0.2.1', 51820), only), null);
    assert.equal(nextCandidate(Endpoint.of('192.0.2.1', 51820), []), null);
    // The name moved to one address: that is something to try.
    assert.equal(nextCandidate(Endpoint.of('192.0.2.9', 51820), only), 0);
  });

  it('tell names (worth looking up) from IP literals', () => {
    assert.equal(hasNames(['192.0.2.1:51820']), false);
    assert.equal(hasNames(['192.0.2.1:51820', '[2001:db8::1]:51820']), false);
    assert.equal(hasNames(['192.0.2.1:51820', 'vpn.example:51820']), true);
  });
});

describe('heal: moving a peer', () => {
  const lines: string[] = [];
  const log: Logger = { error() {}, warn() {}, info: (m) => lines.push(`info ${m}`), debug: (m) => lines.push(`debug ${m}`) };
  let device: Device;
  beforeEach(() => {
    lines.length = 0;
    device = new Device({ mtu: 1420, logger: log });
    device.setPrivateKey(generatePrivateKey());
  });
  afterEach(() => device.close());

  const peerAt = (address: string) =>
    device.setPeer(publicKeyOf(generatePrivateKey()), { endpoint: Endpoint.of(address, 51820), allowedIps: [] });

  it('goes round every candidate, one move per call, and logs each at info', async () => {
    const peer = peerAt('192.0.2.1');
    const seen: string[] = [];
    const tried = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await moveToNext(peer, ['fleet.example:51820'], 17, log, { resolve: table().resolve, tried });
      assert.deepEqual(r, { moved: true, error: null });
      seen.push(peer.endpoint!.toString());
    }
    assert.deepEqual(seen, ['192.0.2.2:51820', '[2001:db8::3]:51820', '192.0.2.1:51820', '192.0.2.2:51820']);
    const info = lines.filter((l) => l.startsWith('info '));
    assert.equal(info.length, 4);
    assert.equal(info[0], `info peer ${peer.name}: handshakes unanswered for 17 s on 192.0.2.1:51820; trying 192.0.2.2:51820 (2 of 3)`);
    assert.match(info[2]!, /on \[2001:db8::3\]:51820; trying 192\.0\.2\.1:51820 \(1 of 3\)$/);
  });

  it('tries every address once per round even when the resolver orders its answer differently at each look-up', async () => {
    const peer = peerAt('192.0.2.1');
    let turn = 0;
    // A round-robin DNS server, or address sorting, may give the same records in another order each
    // time: here reversed every other look-up, where "the next after the current" alone would go
    // back and forth between .1 and .2 and never try .3.
    const shuffling: Lookup = () => {
      const all = ['192.0.2.1', '192.0.2.2', '192.0.2.3'];
      return Promise.resolve(turn++ % 2 ? all.reverse() : all);
    };
    const tried = new Set<string>();
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      await moveToNext(peer, ['fleet.example:51820'], 2, log, { resolve: shuffling, tried });
      seen.push(peer.endpoint!.address.slice(-1));
    }
    // Each round of three holds every address (the first round counts the one the peer started on).
    assert.equal(new Set(['1', ...seen.slice(0, 2)]).size, 3, seen.join(' '));
    assert.equal(new Set(seen.slice(2, 5)).size, 3, seen.join(' '));
  });

  it('stays, without an error, when its address is the only candidate', async () => {
    const peer = peerAt('198.51.100.7');
    assert.deepEqual(await moveToNext(peer, ['one.example:51820'], 2, log, { resolve: table().resolve }), { moved: false, error: null });
    assert.equal(peer.endpoint!.toString(), '198.51.100.7:51820');
    assert.deepEqual(
      lines.filter((l) => l.startsWith('info ')),
      [],
    );
  });

  it('stays, saying why, when no name resolves', async () => {
    const peer = peerAt('192.0.2.1');
    const r = await moveToNext(peer, ['gone.example:51820'], 2, log, { resolve: table().resolve });
    assert.deepEqual(r, { moved: false, error: 'cannot resolve gone.example: ENOTFOUND' });
    assert.equal(peer.endpoint!.toString(), '192.0.2.1:51820');
    assert.deepEqual(lines, [`info peer ${peer.name}: cannot resolve gone.example: ENOTFOUND (trying again later)`]);
  });

  it('moves among IP literals without any look-up', async () => {
    const peer = peerAt('192.0.2.1');
    const { resolve, asked } = table();
    await moveToNext(peer, ['192.0.2.1:51820', '192.0.2.5:51820'], 2, log, { resolve });
    assert.equal(peer.endpoint!.toString(), '192.0.2.5:51820');
    assert.deepEqual(asked, []);
  });
});

describe("heal: the endpoints of a server's answer", () => {
  const base = {
    client_address: '10.200.100.2/24',
    server_public_key: keyToBase64(publicKeyOf(generatePrivateKey())),
    server_endpoint: 'vpn.example:51820',
  };

  it('are server_endpoint alone from a server that sends no server_endpoints', () => {
    assert.deepEqual(serverEndpoints(base), ['vpn.example:51820']);
  });

  it('are the list, server_endpoint first, each once', () => {
    const list = ['vpn.example:51820', '192.0.2.2:51820', '[2001:db8::2]:51820', '192.0.2.2:51820'];
    assert.deepEqual(serverEndpoints({ ...base, server_endpoints: list }), list.slice(0, 3));
    // A list that puts another first still starts where server_endpoint says (what older clients use).
    assert.deepEqual(serverEndpoints({ ...base, server_endpoints: ['192.0.2.2:51820', 'vpn.example:51820'] }), [
      'vpn.example:51820',
      '192.0.2.2:51820',
    ]);
  });

  for (const [bad, why] of [
    [[], /server_endpoints not a non-empty list/],
    ['192.0.2.2:51820', /server_endpoints not a non-empty list/],
    [['192.0.2.2'], /server_endpoints entry "192\.0\.2\.2" not host:port/],
    [['192.0.2.2:0'], /server_endpoints entry "192\.0\.2\.2:0" not host:port/],
    [[51820], /server_endpoints entry 51820 not host:port/],
  ] as const) {
    it(`refuses server_endpoints ${JSON.stringify(bad)}, naming the field`, () => {
      assert.throws(
        () => serverEndpoints({ ...base, server_endpoints: bad }),
        (err: Error) => err instanceof EndpointListError && why.test(err.message),
      );
      const answer = { ...base, server_endpoints: bad } as unknown as Registration;
      assert.throws(() => registrationToConfig(answer, generatePrivateKey(), 'https://api.example/v1/register'), {
        message: new RegExp(`^https://api\\.example/v1/register: the server's answer has ${why.source}`),
      });
    });
  }

  it('builds the tunnel from server_endpoint whatever the list holds', () => {
    const cfg = registrationToConfig({ ...base, server_endpoints: ['vpn.example:51820', '192.0.2.2:51820'] }, generatePrivateKey(), 'x');
    assert.deepEqual(cfg.peers[0]!.endpoint, { host: 'vpn.example', port: 51820 });
  });

  describe('stored', () => {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), 'heal-candidates-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    const store = (name: string, registration: Record<string, unknown>) => {
      const file = join(dir, name);
      writeLeaseState(file, {
        version: LEASE_STATE_VERSION,
        api_url: 'https://api.example',
        client_public_key: keyToBase64(publicKeyOf(generatePrivateKey())),
        registered_at: new Date().toISOString(),
        registration,
        pinned_server_public_key: base.server_public_key,
      });
      return file;
    };

    it('are read back from the stored answer, an older one without server_endpoints too', () => {
      assert.deepEqual(storedServerEndpoints(store('old.lease.json', base)), ['vpn.example:51820']);
      const fleet = store('fleet.lease.json', { ...base, server_endpoints: ['vpn.example:51820', '192.0.2.2:51820'] });
      assert.deepEqual(storedServerEndpoints(fleet), ['vpn.example:51820', '192.0.2.2:51820']);
    });

    it("are what a run of a server fails over along, read again at each move (a renewed answer's list counts)", () => {
      const leaseFile = store('run.lease.json', base);
      const device = new Device({ mtu: 1420, logger: silentLogger });
      device.setPrivateKey(generatePrivateKey());
      const peer = device.setPeer(publicKeyOf(generatePrivateKey()), { endpoint: Endpoint.of('192.0.2.1', 51820), allowedIps: [] });
      const peers: HealPeer[] = [{ peer, endpoint: 'vpn.example:51820' }];
      // The part of the spec healing reads: the runtime dir for the health file, the server to re-check.
      const spec = { runtimeDir: dir, reresolveAfterSeconds: 2, recheck: { leaseFile } } as unknown as CageSpec;
      const healing = startCageHealing(spec, device, peers, silentLogger, 'wcfo0');
      try {
        assert.deepEqual(peers[0]!.endpoints?.(), ['vpn.example:51820']);
        store('run.lease.json', { ...base, server_endpoints: ['vpn.example:51820', '192.0.2.2:51820'] });
        assert.deepEqual(peers[0]!.endpoints?.(), ['vpn.example:51820', '192.0.2.2:51820']);
        rmSync(leaseFile);
        assert.deepEqual(peers[0]!.endpoints?.(), ['vpn.example:51820']);
      } finally {
        healing.stop();
        device.close();
      }
    });

    it('are none from a missing file or a stored answer that fails the checks', () => {
      assert.equal(storedServerEndpoints(join(dir, 'missing.lease.json')), null);
      assert.equal(storedServerEndpoints(store('bad.lease.json', { ...base, server_endpoints: ['nowhere'] })), null);
    });
  });
});
