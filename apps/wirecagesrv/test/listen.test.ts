import assert from 'node:assert/strict';
import { isLoopback, plainHttpRefusal } from '../src/api/listen.js';

// TLS by default: which --api-listen addresses `up` serves as plain HTTP.

describe('plain HTTP refusal', () => {
  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
    for (const a of ['0.0.0.0', '::', '10.0.0.1', '192.0.2.1', '2001:db8::1', '::ffff:10.0.0.1', '128.0.0.1']) assert.ok(!isLoopback(a), a);
  });

  it('refuses plain HTTP on a non-loopback address unless TLS or --insecure-http', () => {
    assert.equal(plainHttpRefusal({ host: '127.0.0.1', port: 8443 }, false, false), null);
    assert.equal(plainHttpRefusal({ host: '::1', port: 8443 }, false, false), null);
    assert.equal(plainHttpRefusal({ host: '0.0.0.0', port: 8443 }, true, false), null);
    assert.equal(plainHttpRefusal({ host: '0.0.0.0', port: 8443 }, false, true), null);
    assert.match(plainHttpRefusal({ host: '0.0.0.0', port: 8443 }, false, false)!, /^--api-listen 0\.0\.0\.0:8443 is not a loopback address: serve it over HTTPS \(--tls-cert FILE --tls-key FILE\), or pass --insecure-http .*tokens travel in clear/);
    assert.match(plainHttpRefusal({ host: '::', port: 443 }, false, false)!, /^--api-listen \[::\]:443 /);
  });
});
