import assert from 'node:assert/strict';
import { parseKeyBase64 } from '@wirecage/wg-engine';
import { formatPublish, parsePublish, publishedEnv } from '../src/servers/publish.js';
import { proofSigner } from '../src/servers/proof.js';

describe('--publish', () => {
  it('parses PUBLIC:TARGET, TCP unless /udp', () => {
    assert.deepEqual(parsePublish('8080:80'), { protocol: 'tcp', publicPort: 8080, targetPort: 80 });
    assert.deepEqual(parsePublish('5353:53/udp'), { protocol: 'udp', publicPort: 5353, targetPort: 53 });
    assert.deepEqual(parsePublish('1:65535/TCP'), { protocol: 'tcp', publicPort: 1, targetPort: 65535 });
    assert.equal(formatPublish(parsePublish('5353:53/udp')), 'udp 5353:53');
    // PUBLIC 0: the server picks the port.
    assert.deepEqual(parsePublish('0:8000'), { protocol: 'tcp', publicPort: 0, targetPort: 8000 });
  });

  it('tells the command every forward of the run and where the world reaches them', () => {
    const at = 'vpn.example.test';
    assert.deepEqual(
      publishedEnv([
        { protocol: 'tcp', publicPort: 20001, targetPort: 8000, publicAddress: at },
        { protocol: 'udp', publicPort: 28053, targetPort: 53, publicAddress: at },
      ]),
      { WIRECAGE_PUBLISHED: 'tcp:20001:8000,udp:28053:53', WIRECAGE_PUBLIC_ADDR: at },
    );
  });

  it('refuses anything else, naming the flag and the form', () => {
    for (const bad of ['8080', '-1:80', '80:0', '70000:80', '8080:80/sctp', 'a:b', '8080:80:90', '', ':80', '8080:']) {
      assert.throws(() => parsePublish(bad), new RegExp(`--publish "${bad}" must be PUBLIC:TARGET or PUBLIC:TARGET/udp`));
    }
  });
});

describe('Wirecage-Proof', () => {
  // The shared test vector of packages/wg-engine/test/key-proof.test.ts; the
  // server's verifier accepts it in apps/wirecagesrv/test/forwards-proof.test.ts.
  const clientPrivate = parseKeyBase64('EBEREREREREREREREREREREREREREREREREREREREVE=');
  const serverPublic = parseKeyBase64('D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=');
  const body = '{"client_public_key":"e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=","protocol":"tcp","public_port":8080,"target_port":80}';

  it('matches the shared test vector', () => {
    const sign = proofSigner(clientPrivate, serverPublic, { now: () => 1_700_000_000_500, nonce: () => Buffer.alloc(16, 7) });
    const header = sign({
      method: 'POST',
      route: '/v1/portforward',
      clientPublicKey: 'e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=',
      body,
    });
    assert.equal(header, '1700000000.BwcHBwcHBwcHBwcHBwcHBw.nFiwVz-dKtEFpsC7UvkZQfYJprDN3YE-4hjmH8zhISw');
  });

  it('signs each request with a fresh nonce and the current time', () => {
    const base = { method: 'POST', route: '/v1/portforward', clientPublicKey: 'e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=', body };
    const fresh = proofSigner(clientPrivate, serverPublic);
    const before = Math.floor(Date.now() / 1000);
    const [a, b] = [fresh(base).split('.'), fresh(base).split('.')];
    assert.notEqual(a[1], b[1], 'a new nonce every time');
    assert.equal(Buffer.from(a[1]!, 'base64url').length, 16);
    assert.ok(Number(a[0]) >= before && Number(a[0]) <= Math.floor(Date.now() / 1000), 'unix seconds from the clock');
  });

  it('refuses a low-order server key when asked to sign', () => {
    const sign = proofSigner(clientPrivate, Buffer.alloc(32));
    assert.throws(() => sign({ method: 'GET', route: '/v1/portforward', clientPublicKey: 'x', body: '' }), /low-order point/);
  });
});
