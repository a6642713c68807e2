import assert from 'node:assert/strict';
import { waitFor } from '@wirecage/netns/lab';
import type { Registry, RegistryChange } from '../src/registry/index.js';
import { newPublicKey } from './helpers.js';
import { postgresStore } from './stores.js';

// The fleet side of the PostgreSQL store: the changes one node makes reach the
// others (LISTEN/NOTIFY, within a second, never a node's own), a listener
// that loses its connection comes back and says it may have missed some, and
// the nodes' heartbeats. Two or three PostgresRegistry instances on one
// database stand for the nodes.

const HOUR = 3_600_000;

interface Heard {
  changes: RegistryChange[];
  gaps: number;
}

/** What `r`'s watch() hears, until the registry closes. */
async function listen(r: Registry): Promise<Heard> {
  const heard: Heard = { changes: [], gaps: 0 };
  await r.fleet!.watch(
    (c) => heard.changes.push(c),
    () => heard.gaps++,
  );
  return heard;
}

/** Resolves once `heard` holds `n` changes; within a second, as the fleet's promise says. */
const heardWithin = (heard: Heard, n: number, ms = 1000) =>
  waitFor(`${n} change(s) (heard: ${JSON.stringify(heard.changes)})`, () => (heard.changes.length >= n ? true : undefined), ms);

describe('registry fleet on PostgreSQL', () => {
  const store = postgresStore();
  const nodes = async (n: number, opts: { leaseMs?: number } = {}): Promise<Registry[]> => {
    const url = await store.location();
    return Promise.all(Array.from({ length: n }, (_, i) => store.open(url, { ...opts, node: `node${i + 1}` })));
  };

  it("hands each node the others' changes within a second, and never its own", async () => {
    const [a, b] = await nodes(2, { leaseMs: HOUR });
    const [atA, atB] = [await listen(a!), await listen(b!)];
    const k = newPublicKey();
    const t0 = Date.now();
    await a!.register(k);
    await heardWithin(atB, 1);
    assert.ok(Date.now() - t0 < 1000);
    await a!.register(k); // a renewal: no change for the others
    await a!.touch(k); // the session is now node1's
    await a!.touch(k); // still node1's: nothing to say
    await a!.forwards.add({ protocol: 'udp', publicPort: 5353, targetPort: 53, peerPublicKey: k });
    await assert.rejects(a!.forwards.add({ protocol: 'udp', publicPort: 5353, targetPort: 54, peerPublicKey: k })); // refused: nothing sent
    await a!.forwards.remove('udp', 5353);
    await b!.touch(k); // the session moves to node2: node1 hears it
    await a!.remove(k);
    await heardWithin(atB, 5);
    await heardWithin(atA, 1);
    assert.deepEqual(atB.changes, [
      { kind: 'peer-added', publicKey: k, node: 'node1' },
      { kind: 'session-moved', publicKey: k, node: 'node1' },
      { kind: 'forward-added', protocol: 'udp', publicPort: 5353, node: 'node1' },
      { kind: 'forward-removed', protocol: 'udp', publicPort: 5353, node: 'node1' },
      { kind: 'peer-removed', publicKey: k, node: 'node1' },
    ]);
    assert.deepEqual(atA.changes, [{ kind: 'session-moved', publicKey: k, node: 'node2' }]);
  });

  it('says which node removed an expired peer, once', async () => {
    const [a, b, c] = await nodes(3, { leaseMs: HOUR });
    const atA = await listen(a!);
    const k = newPublicKey();
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    await a!.register(k, t0);
    const swept = await Promise.all([b!.removeExpired(k, t0 + 2 * HOUR), c!.removeExpired(k, t0 + 2 * HOUR)]);
    assert.equal(swept.filter(Boolean).length, 1);
    await heardWithin(atA, 1);
    assert.deepEqual(atA.changes, [{ kind: 'peer-removed', publicKey: k, node: swept[0] ? 'node2' : 'node3' }]);
    // Nothing more arrives for the sweep that found nothing: a later change is the next one heard.
    await c!.register(newPublicKey());
    await heardWithin(atA, 2);
    assert.equal(atA.changes[1]!.kind, 'peer-added');
  });

  it('ignores a malformed notification on its channel and keeps listening', async () => {
    const logged: string[] = [];
    const url = await store.location();
    const r = await store.open(url, {
      node: 'node1',
      logger: { debug() {}, info() {}, error() {}, warn: (m: string) => logged.push(m) },
    });
    const heard = await listen(r);
    const db = url.replace(/^.*@\/([^?]+)\?.*$/, '$1');
    await store.lab.psql(db, `NOTIFY wirecagesrv_changes, 'not json'`);
    await store.lab.psql(db, `NOTIFY wirecagesrv_changes, '{"kind":"peer-added","publicKey":"bad","node":"node9"}'`);
    const key = newPublicKey();
    await store.lab.psql(db, `NOTIFY wirecagesrv_changes, '{"kind":"peer-removed","publicKey":"${key}","node":"node9"}'`);
    await heardWithin(heard, 1);
    assert.deepEqual(heard.changes, [{ kind: 'peer-removed', publicKey: key, node: 'node9' }]);
    assert.equal(logged.filter((l) => /ignored a change notification/.test(l)).length, 2, logged.join('\n'));
    assert.ok(logged.some((l) => /it is not JSON/.test(l)) && logged.some((l) => /its public key is missing or malformed/.test(l)));
  });

  it('reconnects when its listening connection is killed, reports the gap, and hears changes again', async function () {
    this.timeout(20_000);
    const url = await store.location();
    const [a, b] = [await store.open(url, { node: 'node1' }), await store.open(url, { node: 'node2' })];
    const atB = await listen(b);
    const db = url.replace(/^.*@\/([^?]+)\?.*$/, '$1');
    const killed = await store.lab.psql(
      db,
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'wirecagesrv/node2:listen'",
    );
    assert.equal(killed.trim(), '1');
    await waitFor('the gap to be reported', () => (atB.gaps === 1 ? true : undefined), 10_000);
    const k = newPublicKey();
    await a.register(k);
    await heardWithin(atB, 1);
    assert.deepEqual(atB.changes, [{ kind: 'peer-added', publicKey: k, node: 'node1' }]);
    assert.equal(atB.gaps, 1);
    // Closing the registry ends its listener: no connection of node2's is left.
    await b.close();
    const left = await store.lab.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'wirecagesrv/node2%'");
    assert.equal(left.trim(), '0');
  });

  it('lists the nodes by heartbeat with the sessions they hold, and forgets one that leaves', async () => {
    const [a, b] = await nodes(2);
    const now = Date.parse('2030-01-01T00:00:00Z');
    const started = new Date(now - HOUR);
    await a!.fleet!.heartbeat({ endpoint: 'vpn.example.org:51820', api: 'https://0.0.0.0:8443', startedAt: started }, now);
    await b!.fleet!.heartbeat({ endpoint: 'vpn.example.org:51820', api: 'https://0.0.0.0:9443', startedAt: started }, now - 60_000);
    const [k1, k2, k3] = [newPublicKey(), newPublicKey(), newPublicKey()];
    for (const k of [k1, k2, k3]) await a!.register(k);
    await a!.touch(k1);
    await a!.touch(k2);
    await b!.touch(k3);
    const all = await b!.fleet!.nodes();
    assert.deepEqual(all, [
      {
        name: 'node1',
        endpoint: 'vpn.example.org:51820',
        api: 'https://0.0.0.0:8443',
        startedAt: started,
        heartbeat: new Date(now),
        sessions: 2,
      },
      {
        name: 'node2',
        endpoint: 'vpn.example.org:51820',
        api: 'https://0.0.0.0:9443',
        startedAt: started,
        heartbeat: new Date(now - 60_000),
        sessions: 1,
      },
    ]);
    assert.deepEqual(
      (await a!.fleet!.nodes(30_000, now)).map((n) => n.name),
      ['node1'],
      'node2 is 60 s silent',
    );
    // A heartbeat updates the node's row rather than adding one.
    await b!.fleet!.heartbeat({ endpoint: 'vpn.example.org:51820', api: 'https://0.0.0.0:9443', startedAt: started }, now);
    assert.deepEqual(
      (await a!.fleet!.nodes(30_000, now)).map((n) => n.name),
      ['node1', 'node2'],
    );
    await a!.fleet!.leave();
    assert.deepEqual(
      (await b!.fleet!.nodes()).map((n) => n.name),
      ['node2'],
    );
  });
});
