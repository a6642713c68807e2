import assert from 'node:assert/strict';
import { isLoopback, plainHttpRefusal } from '../src/api/listen.js';
import { formatListen, parseListen } from '../src/listen.js';

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
    assert.match(
      plainHttpRefusal({ host: '0.0.0.0', port: 8443 }, false, false)!,
      /^--api-listen 0\.0\.0\.0:8443 is not a loopback address: serve it over HTTPS \(--tls-cert FILE --tls-key FILE\), or pass --insecure-http .*tokens travel in clear/,
    );
    assert.match(plainHttpRefusal({ host: '::', port: 443 }, false, false)!, /^--api-listen \[::\]:443 /);
  });
});

describe('parseListen (--wg-listen, --api-listen)', () => {
  it('takes literal addresses, port 0 included (the kernel picks)', () => {
    assert.deepEqual(parseListen('0.0.0.0:8443', '--api-listen'), { host: '0.0.0.0', port: 8443 });
    assert.deepEqual(parseListen(' [::]:51820 ', '--wg-listen'), { host: '::', port: 51820 });
    assert.deepEqual(parseListen('127.0.0.1:0', '--api-listen'), { host: '127.0.0.1', port: 0 });
    assert.equal(formatListen(parseListen('[::1]:8443', '--api-listen')), '[::1]:8443');
  });

  it('refuses names, a missing host and bad ports, naming the flag and the reason', () => {
    const cases: [string, RegExp][] = [
      ['localhost:80', /"localhost" is not an IPv4 address$/],
      [':8443', /expected IPv4:port or \[IPv6\]:port$/],
      ['0.0.0.0:65536', /port "65536" is not a number from 0 to 65535$/],
      ['::1:8443', /write an IPv6 address in brackets/],
      ['[0.0.0.0]:8443', /"0.0.0.0" is not an IPv6 address$/],
    ];
    for (const [text, why] of cases) {
      assert.throws(
        () => parseListen(text, '--api-listen'),
        (err: Error) =>
          err.message.startsWith(`--api-listen "${text}" must be IP:PORT, such as 0.0.0.0:8443 or [::]:8443: `) && why.test(err.message),
        text,
      );
    }
  });
});
