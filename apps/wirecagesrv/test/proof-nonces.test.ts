import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ProofVerifier } from '../src/api/proof.js';
import { HEADER, req, serverPrivate, serverPublic, status } from './proof-vector.js';
import { Registry } from '../src/registry/index.js';
import { tempDirs } from './helpers.js';

// The key-proof nonces kept in the registry: a proof used before the server
// stopped is refused after it starts again on the same file (a real SQLite
// file, closed and reopened), and the expired ones are pruned.
// The request is the shared test vector (proof-vector.ts).
const MADE = 1_700_000_000_000;

describe('key-proof nonces in the registry', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  const verifier = (registry: Registry, now: () => number, maxNonces?: number) =>
    new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now, nonces: registry.nonces, maxNonces });

  it('refuses a proof replayed after the registry is closed and opened again (a restart)', () => {
    const path = join(tmp.make(), 'registry.db');
    const first = Registry.open({ path });
    assert.equal(
      status(() => verifier(first, () => MADE + 10_000).verify(HEADER, req)),
      200,
    );
    first.close();

    const again = Registry.open({ path });
    try {
      const v = verifier(again, () => MADE + 20_000);
      assert.equal(
        status(() => v.verify(HEADER, req)),
        401,
        'replayed within its window, after the restart',
      );
      assert.throws(() => v.verify(HEADER, req), /already used/);
      assert.equal(again.nonces.size, 1);
    } finally {
      again.close();
    }
  });

  it('prunes nonces whose window is over, and bounds how many it keeps', () => {
    const path = join(tmp.make(), 'registry.db');
    const r = Registry.open({ path });
    try {
      let now = MADE;
      assert.equal(r.nonces.claim('a', now + 600_000, now, 10), 'fresh');
      assert.equal(r.nonces.claim('a', now + 600_000, now, 10), 'replayed');
      assert.equal(r.nonces.claim('b', now + 600_000, now, 2), 'fresh');
      assert.equal(r.nonces.claim('c', now + 600_000, now, 2), 'full', 'the cap');
      now += 600_000;
      assert.equal(r.nonces.claim('c', now + 600_000, now, 2), 'fresh', 'a and b expired and were pruned');
      assert.equal(r.nonces.size, 1);
      assert.equal(
        r.nonces.claim('a', now + 600_000, now, 2),
        'fresh',
        "a pruned nonce is unknown again (its proof's time is too old by then)",
      );
      // Through the verifier: the cap answers 503.
      assert.equal(
        status(() => verifier(r, () => MADE, 0).verify(HEADER, req)),
        503,
      );
    } finally {
      r.close();
    }
  });
});
