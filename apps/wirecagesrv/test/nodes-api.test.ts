import assert from 'node:assert/strict';
import { newClient, request } from './api-client.js';
import { ADMIN, TOKEN, serveForwardsApi, type ForwardsApi } from './forwards-api-server.js';
import { tempDirs } from './helpers.js';

// GET /v1/nodes on a server with a registry of its own (SQLite): it is the
// one node, holding the sessions its handshakes recorded. The fleet's answer
// (PostgreSQL, several nodes) is tested in tests/server/fleet.test.ts.
describe('GET /v1/nodes (one server)', () => {
  const tmp = tempDirs();
  let api: ForwardsApi;
  const startedAt = new Date('2030-01-02T03:04:05Z');
  before(async () => {
    api = await serveForwardsApi(tmp.make(), {
      api: { node: { endpoint: 'vpn.example.test:51820', api: 'https://0.0.0.0:8443', startedAt } },
      forwards: { adminToken: ADMIN },
    });
  });
  after(async () => {
    await api.stop();
    tmp.cleanup();
  });
  const list = (headers: Record<string, string>) => request(api.sock, 'GET', '/v1/nodes', headers);

  it('lists this server alone, live, with the sessions its handshakes hold', async () => {
    const [a, b] = [newClient(), newClient()];
    await api.registry.register(a.key);
    await api.registry.register(b.key);
    await api.registry.touch(a.key, Date.now(), '192.0.2.7:51820');
    const r = await list({ authorization: `Bearer ${ADMIN}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const nodes = r.body.nodes as Record<string, unknown>[];
    assert.equal(nodes.length, 1);
    assert.deepEqual(
      { ...nodes[0], heartbeat: undefined },
      {
        name: api.registry.node,
        endpoint: 'vpn.example.test:51820',
        api: 'https://0.0.0.0:8443',
        started_at: startedAt.toISOString(),
        heartbeat: undefined,
        sessions: 1,
        live: true,
      },
    );
  });

  it('answers only the admin token', async () => {
    assert.equal((await list({ authorization: `Bearer ${TOKEN}` })).status, 401, 'the registration token');
    assert.equal((await list({})).status, 401, 'no token');
  });
});
