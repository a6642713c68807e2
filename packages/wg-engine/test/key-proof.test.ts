import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { generatePrivateKey, keyToBase64, parseKeyBase64, publicKeyOf } from '@wirecage/wg-engine';
import {
  KEY_PROOF_HEADER,
  KEY_PROOF_MAX_SKEW_S,
  formatKeyProof,
  keyProofHeader,
  keyProofKey,
  keyProofMac,
  parseKeyProof,
  type KeyProofFields,
} from '../src/crypto/key-proof.js';

// The shared test vector. wirecage's signer (packages/cli/test/publish.test.ts)
// and wirecagesrv's verifier (apps/wirecagesrv/test/forwards-proof.test.ts)
// check that they produce and accept this same header.
const clientPrivate = parseKeyBase64('EBEREREREREREREREREREREREREREREREREREREREVE=');
const serverPrivate = parseKeyBase64('ICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiImI=');
const serverPublic = parseKeyBase64('D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=');
const CLIENT = 'e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=';
const clientPublic = parseKeyBase64(CLIENT);
const BODY = '{"client_public_key":"e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=","protocol":"tcp","public_port":8080,"target_port":80}';
const NONCE = Buffer.alloc(16, 7).toString('base64url');
const HEADER = '1700000000.BwcHBwcHBwcHBwcHBwcHBw.nFiwVz-dKtEFpsC7UvkZQfYJprDN3YE-4hjmH8zhISw';
const fields: KeyProofFields = {
  method: 'POST',
  route: '/v1/portforward',
  clientPublicKey: CLIENT,
  time: 1_700_000_000,
  nonce: NONCE,
  body: BODY,
};

/** The same derivation on node:crypto's X25519, an implementation independent of sodium. */
function nodeKey(ownPrivate: Buffer, otherPublic: Buffer, cPub: Buffer, sPub: Buffer): Buffer {
  const priv = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: ownPrivate.toString('base64url'), x: publicKeyOf(ownPrivate).toString('base64url') },
    format: 'jwk',
  });
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: otherPublic.toString('base64url') }, format: 'jwk' });
  const shared = diffieHellman({ privateKey: priv, publicKey: pub });
  return createHash('sha256').update('wirecage key proof v1').update(shared).update(cPub).update(sPub).digest();
}

describe('key proof (Wirecage-Proof)', () => {
  it('produces the shared test vector from the client side', () => {
    assert.equal(keyToBase64(publicKeyOf(clientPrivate)), CLIENT);
    assert.equal(keyToBase64(publicKeyOf(serverPrivate)), keyToBase64(serverPublic));
    const key = keyProofKey(clientPrivate, serverPublic, clientPublic, serverPublic)!;
    assert.equal(keyProofHeader(key, fields), HEADER);
    assert.equal(KEY_PROOF_HEADER, 'Wirecage-Proof');
    assert.equal(KEY_PROOF_MAX_SKEW_S, 300);
  });

  it('derives the same key from the server side and verifies the vector', () => {
    const clientSide = keyProofKey(clientPrivate, serverPublic, clientPublic, serverPublic)!;
    const serverSide = keyProofKey(serverPrivate, clientPublic, clientPublic, serverPublic)!;
    assert.deepEqual(serverSide, clientSide);
    const parsed = parseKeyProof(HEADER)!;
    assert.deepEqual({ time: parsed.time, nonce: parsed.nonce }, { time: fields.time, nonce: NONCE });
    assert.deepEqual(keyProofMac(serverSide, { ...fields, body: Buffer.from(BODY) }), parsed.mac, 'a Buffer body MACs as its UTF-8 string');
  });

  it('agrees with node:crypto X25519 on random keys, from both sides', () => {
    for (let i = 0; i < 8; i++) {
      const c = generatePrivateKey();
      const s = generatePrivateKey();
      const cPub = publicKeyOf(c);
      const sPub = publicKeyOf(s);
      const expected = nodeKey(c, sPub, cPub, sPub);
      assert.deepEqual(keyProofKey(c, sPub, cPub, sPub), expected);
      assert.deepEqual(keyProofKey(s, cPub, cPub, sPub), expected);
      assert.deepEqual(nodeKey(s, cPub, cPub, sPub), expected);
    }
  });

  it('has no key for a low-order or malformed public key', () => {
    const orderOne = Buffer.alloc(32);
    orderOne[0] = 1;
    // An order-8 point (from the small-order list every X25519 must reject).
    const orderEight = Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex');
    for (const bad of [Buffer.alloc(32), orderOne, orderEight, Buffer.alloc(31, 9)]) {
      assert.equal(keyProofKey(clientPrivate, bad, clientPublic, bad), null, bad.toString('hex'));
    }
  });

  it('binds every field into the MAC', () => {
    const key = keyProofKey(clientPrivate, serverPublic, clientPublic, serverPublic)!;
    const base = keyProofMac(key, fields).toString('hex');
    assert.equal(keyProofMac(key, { ...fields, method: 'post' }).toString('hex'), base, 'the method is case-insensitive');
    const changed: Partial<KeyProofFields>[] = [
      { method: 'DELETE' },
      { route: '/v1/portforwards' },
      { clientPublicKey: keyToBase64(serverPublic) },
      { time: fields.time + 1 },
      { nonce: Buffer.alloc(16, 8).toString('base64url') },
      { body: BODY.replace('8080', '8081') },
    ];
    for (const c of changed) assert.notEqual(keyProofMac(key, { ...fields, ...c }).toString('hex'), base, JSON.stringify(c));
    const otherKey = keyProofKey(generatePrivateKey(), serverPublic, clientPublic, serverPublic)!;
    assert.notEqual(keyProofMac(otherKey, fields).toString('hex'), base);
  });

  it('formats and parses the header, refusing anything but TIME.NONCE.MAC', () => {
    const mac = Buffer.alloc(32, 0xab);
    const text = formatKeyProof(42, NONCE, mac);
    assert.deepEqual(parseKeyProof(`  ${text}\n`), { time: 42, nonce: NONCE, mac });
    const goodMac = mac.toString('base64url');
    for (const bad of [
      '',
      `42.${NONCE}`,
      `42.${NONCE}.${goodMac}.x`,
      `-1.${NONCE}.${goodMac}`,
      `4e2.${NONCE}.${goodMac}`,
      `1234567890123.${NONCE}.${goodMac}`,
      `42.${Buffer.alloc(15).toString('base64url')}.${goodMac}`,
      `42.${NONCE}.${Buffer.alloc(31).toString('base64url')}`,
      `42.${NONCE}.${mac.toString('base64')}`,
      `42.${NONCE}=.${goodMac}`,
    ]) {
      assert.equal(parseKeyProof(bad), null, bad);
    }
  });
});
