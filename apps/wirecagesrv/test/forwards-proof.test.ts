import assert from 'node:assert/strict';
import { parseKeyBase64 } from '@wirecage/wg-engine';
import { HttpError } from '../src/api/errors.js';
import { ProofVerifier } from '../src/api/proof.js';

// The shared test vector of packages/wg-engine/test/key-proof.test.ts, which
// defines the scheme; wirecage's signer produces this header
// (packages/cli/test/publish.test.ts), and the verifier must accept it.
const serverPrivate = parseKeyBase64('ICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiImI=');
const serverPublic = parseKeyBase64('D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=');
const CLIENT = 'e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=';
const BODY = Buffer.from('{"client_public_key":"e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=","protocol":"tcp","public_port":8080,"target_port":80}');
const HEADER = '1700000000.BwcHBwcHBwcHBwcHBwcHBw.nFiwVz-dKtEFpsC7UvkZQfYJprDN3YE-4hjmH8zhISw';
const req = { method: 'POST', path: '/v1/portforward', clientPublicKey: CLIENT, body: BODY };

function status(f: () => void): number {
  try {
    f();
    return 200;
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

describe('key proof', () => {
  it('accepts the shared test vector once, at the time it was made', () => {
    let now = 1_700_000_010_000;
    const v = new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now: () => now });
    assert.equal(status(() => v.verify(HEADER, req)), 200);
    assert.equal(status(() => v.verify(HEADER, req)), 401, 'a replay');
    // After the window, the nonce is forgotten, but the time is then too old.
    now += 3_600_000;
    assert.equal(status(() => v.verify(HEADER, req)), 401);
  });

  it('refuses the vector for another key, method or body (403)', () => {
    const v = new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now: () => 1_700_000_000_000 });
    assert.equal(status(() => v.verify(HEADER, { ...req, method: 'DELETE' })), 403);
    assert.equal(status(() => v.verify(HEADER, { ...req, body: Buffer.from(BODY.toString().replace('8080', '8081')) })), 403);
    assert.equal(status(() => v.verify(HEADER, { ...req, clientPublicKey: 'D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=' })), 403);
    // A low-order client key has no shared secret: refused, not thrown.
    assert.equal(status(() => v.verify(HEADER, { ...req, clientPublicKey: Buffer.alloc(32).toString('base64') })), 403);
  });

  it('bounds the nonces it remembers', () => {
    const v = new ProofVerifier({ serverPrivateKey: serverPrivate, serverPublicKey: serverPublic, now: () => 1_700_000_000_000, maxNonces: 0 });
    assert.equal(status(() => v.verify(HEADER, req)), 503);
  });
});
