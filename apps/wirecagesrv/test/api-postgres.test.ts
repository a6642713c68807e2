import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createApiHandler } from '../src/api/routes.js';
import { listenApi, type ApiServer } from '../src/api/listen.js';
import { openRegistry, type Registry } from '../src/registry/index.js';
import { request } from './api-client.js';
import { newPublicKey, tempDirs } from './helpers.js';
import { labPostgres } from './stores.js';

// The API on a fleet's registry whose database goes away: registrations are
// answered 503 with Retry-After (a client's retry), never 500, and the
// answer names no address of the database.
describe('the API when the PostgreSQL registry is unreachable', () => {
  const pg = labPostgres();
  const tmp = tempDirs();
  let registry: Registry;
  let api: ApiServer;
  let sock: string;
  before(async () => {
    registry = await openRegistry({ location: await pg.database(), subnet6: 'fd00:aa::/64', node: 'api-test' });
    const handler = createApiHandler({
      registry,
      authToken: 'registration-token-0123456789',
      serverPublicKey: 'D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=',
      serverEndpoint: 'vpn.example.test:51820',
      mtu: 1420,
      dns: [],
      rateLimit: { burst: 1000 },
    });
    sock = join(tmp.make(), 'api.sock');
    api = await listenApi(handler, { path: sock });
  });
  after(async () => {
    await api?.close();
    await registry?.close();
    tmp.cleanup();
  });
  const register = () =>
    request(
      sock,
      'POST',
      '/v1/register',
      { authorization: 'Bearer registration-token-0123456789' },
      JSON.stringify({ client_public_key: newPublicKey() }),
    );

  it('registers while the database serves, and answers 503 with Retry-After once it is gone', async () => {
    assert.equal((await register()).status, 200);
    await pg.lab.stop();
    const r = await register();
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.headers['retry-after'], '5');
    assert.match(String(r.body.error), /the registry is unreachable for now; retry shortly/);
    assert.doesNotMatch(JSON.stringify(r.body), new RegExp(pg.lab.socketDir.replace(/[.]/g, '\\.')), 'no socket path in the answer');
  });
});
