import assert from 'node:assert/strict';
import { ProofVerifier } from '../src/api/proof.js';
import type { NonceCache, Registry } from '../src/registry/index.js';
import { HEADER, req, serverPrivate, serverPublic, status } from './proof-vector.js';
import { forEachStore } from './stores.js';

// The key-proof nonces kept in the registry: a proof used before the server
// stopped is refused after it starts again on the same registry (closed and
// opened again), and the expired ones are pruned. The request is the shared
// test vector (proof-vector.ts).
const MADE = 1_700_000_000_000;

const size = (nonces: NonceCache) => (nonces as NonceCache & { size(): Promise<number> }).size();

forEachStore('key-proof nonces in the registry', (store) => {
  const verifier = (registry: Registry, now: () => number, maxNonces?: number) =>
    new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now, nonces: registry.nonces, maxNonces });

  it('refuses a proof replayed after the registry is closed and opened again (a restart)', async () => {
    const location = await store.location();
    const first = await store.open(location);
    assert.equal(await status(() => verifier(first, () => MADE + 10_000).verify(HEADER, req)), 200);
    await first.close();

    const again = await store.open(location);
    const v = verifier(again, () => MADE + 20_000);
    assert.equal(await status(() => v.verify(HEADER, req)), 401, 'replayed within its window, after the restart');
    await assert.rejects(v.verify(HEADER, req), /already used/);
    assert.equal(await size(again.nonces), 1);
  });

  it('prunes nonces whose window is over, and bounds how many it keeps', async () => {
    const r = await store.fresh();
    let now = MADE;
    assert.equal(await r.nonces.claim('a', now + 600_000, now, 10), 'fresh');
    assert.equal(await r.nonces.claim('a', now + 600_000, now, 10), 'replayed');
    assert.equal(await r.nonces.claim('b', now + 600_000, now, 2), 'fresh');
    assert.equal(await r.nonces.claim('c', now + 600_000, now, 2), 'full', 'the cap');
    now += 600_000;
    assert.equal(await r.nonces.claim('c', now + 600_000, now, 2), 'fresh', 'a and b expired and were pruned');
    assert.equal(await size(r.nonces), 1);
    assert.equal(
      await r.nonces.claim('a', now + 600_000, now, 2),
      'fresh',
      "a pruned nonce is unknown again (its proof's time is too old by then)",
    );
    // Through the verifier: the cap answers 503.
    assert.equal(await status(() => verifier(r, () => MADE, 0).verify(HEADER, req)), 503);
  });

  it('accepts a nonce once however many claim it at once', async () => {
    const location = await store.location();
    // Two registries on one store: two servers (or, on PostgreSQL, two nodes).
    const [a, b] = [await store.open(location), await store.open(location)];
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).nonces.claim('once', MADE + 600_000, MADE, 100)));
    assert.deepEqual(claims.filter((c) => c === 'fresh').length, 1, claims.join(' '));
    assert.deepEqual(claims.filter((c) => c === 'replayed').length, 7);
  });
});
