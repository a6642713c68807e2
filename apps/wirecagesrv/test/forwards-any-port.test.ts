import assert from 'node:assert/strict';
import net from 'node:net';
import { PROOF_HEADER } from '../src/api/proof.js';
import { newClient, portTaken, proofFor, request, type Client } from './api-client.js';
import { TOKEN, serveForwardsApi, serverPub } from './forwards-api-server.js';
import { tempDirs } from './helpers.js';

// POST /v1/portforward with public_port 0: the server picks a free port of
// its --forward-ports range, over real HTTP and real listeners on 127.0.0.1
// (as forwards-api.test.ts; nothing is relayed).

/** `n` consecutive ports of 127.0.0.1 that nothing holds (TCP and UDP), from a random start. */
async function freeRange(n: number): Promise<{ low: number; high: number }> {
  for (let tries = 0; tries < 50; tries++) {
    const low = 40000 + Math.floor(Math.random() * 20000);
    const taken = await Promise.all(Array.from({ length: n }, (_, i) => Promise.all([portTaken(low + i), portTaken(low + i, 'udp')])));
    if (taken.every(([t, u]) => !t && !u)) return { low, high: low + n - 1 };
  }
  throw new Error(`no ${n} free consecutive ports found`);
}

describe('API /v1/portforward, public_port 0', () => {
  const tmp = tempDirs();
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  after(() => tmp.cleanup());

  async function serve(ports: { low: number; high: number }, publicAddress?: string) {
    const { sock, registry, stop } = await serveForwardsApi(tmp.make(), { ports, forwards: { publicAddress } });
    cleanups.push(stop);
    const client = async () => {
      const c = newClient();
      await registry.register(c.key);
      return c;
    };
    const post = (c: Client, fields: Record<string, unknown>) => {
      const body = JSON.stringify({ client_public_key: c.key, ...fields });
      const proof = proofFor(c, serverPub, { method: 'POST', route: '/v1/portforward', body });
      return request(
        sock,
        'POST',
        '/v1/portforward',
        { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, [PROOF_HEADER]: proof },
        body,
      );
    };
    return { registry, client, post };
  }

  it('gives concurrent requests different ports of the range until it is full, then 503 with the reason', async () => {
    const range = await freeRange(4);
    const s = await serve(range);
    const clients = await Promise.all(Array.from({ length: 8 }, () => s.client()));
    const answers = await Promise.all(clients.map((c, i) => s.post(c, { protocol: 'tcp', public_port: 0, target_port: 8000 + i })));
    const made = answers.filter((a) => a.status === 201);
    const ports = made.map((a) => a.body.public_port as number).sort();
    assert.deepEqual(ports, [range.low, range.low + 1, range.low + 2, range.high], JSON.stringify(answers.map((a) => a.body)));
    for (const p of ports) assert.equal(await portTaken(p), true, `port ${p} is not bound`);
    const refused = answers.filter((a) => a.status !== 201);
    assert.equal(refused.length, 4);
    for (const r of refused) {
      assert.equal(r.status, 503);
      assert.equal(
        r.body.error,
        `no tcp port is free among the ports this server forwards (${range.low}-${range.high}): every one is taken; remove a forward or ask for a wider --forward-ports`,
      );
    }
    // The same numbers in the other protocol are other ports.
    const udp = await s.post(clients[0]!, { protocol: 'udp', public_port: 0, target_port: 53 });
    assert.equal(udp.status, 201, JSON.stringify(udp.body));
    assert.equal((await s.registry.forwards.list()).length, 5);
  });

  it('skips a port another program holds, and says so when that leaves none', async () => {
    const range = await freeRange(2);
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(range.low, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => squatter.close(r)));
    const s = await serve(range, 'vpn.example.test');
    const c = await s.client();
    const first = await s.post(c, { protocol: 'tcp', public_port: 0, target_port: 80 });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.public_port, range.high);
    // The server's address for forwards as its operator gave it, not the wildcard it listens on.
    assert.equal(first.body.public_address, 'vpn.example.test');
    const second = await s.post(c, { protocol: 'tcp', public_port: 0, target_port: 81 });
    assert.equal(second.status, 503);
    assert.match(String(second.body.error), /every one is taken, 1 of them held by other programs on the server/);
    assert.equal(await s.registry.forwards.get('tcp', range.low), undefined, 'the squatted port is not recorded');
  });
});
