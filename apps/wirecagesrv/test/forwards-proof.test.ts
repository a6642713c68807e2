import assert from 'node:assert/strict';
import { ProofVerifier } from '../src/api/proof.js';
import { BODY, HEADER, req, serverPrivate, serverPublic, status } from './proof-vector.js';

describe('key proof', () => {
  it('accepts the shared test vector once, at the time it was made', async () => {
    let now = 1_700_000_010_000;
    const v = new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now: () => now });
    assert.equal(await status(() => v.verify(HEADER, req)), 200);
    assert.equal(await status(() => v.verify(HEADER, req)), 401, 'a replay');
    // After the window, the nonce is forgotten, but the time is then too old.
    now += 3_600_000;
    assert.equal(await status(() => v.verify(HEADER, req)), 401);
  });

  it('refuses the vector for another key, method or body (403)', async () => {
    const v = new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now: () => 1_700_000_000_000 });
    assert.equal(await status(() => v.verify(HEADER, { ...req, method: 'DELETE' })), 403);
    assert.equal(await status(() => v.verify(HEADER, { ...req, body: Buffer.from(BODY.toString().replace('8080', '8081')) })), 403);
    assert.equal(await status(() => v.verify(HEADER, { ...req, clientPublicKey: 'D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=' })), 403);
    // A low-order client key has no shared secret: refused, not thrown.
    assert.equal(await status(() => v.verify(HEADER, { ...req, clientPublicKey: Buffer.alloc(32).toString('base64') })), 403);
  });

  it('bounds the nonces it remembers', async () => {
    const v = new ProofVerifier({
      serverPrivateKey: serverPrivate,
      serverPublicKey: serverPublic,
      now: () => 1_700_000_000_000,
      maxNonces: 0,
    });
    assert.equal(await status(() => v.verify(HEADER, req)), 503);
  });
});
