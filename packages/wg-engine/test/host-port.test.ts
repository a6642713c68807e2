import assert from 'node:assert/strict';
import { Endpoint } from '../src/endpoint.js';
import { HostPortError, formatHostPort, isHostName, parseHostPort } from '../src/host-port.js';

// The one host:port parser every flag, config key and UAPI line goes through;
// each option is what one kind of caller needs.

const refuses = (text: string, why: RegExp, run: () => unknown) =>
  assert.throws(run, (err: Error) => err instanceof HostPortError && why.test(err.message) && err.message.includes(`"${text}"`), text);

describe('parseHostPort', () => {
  it('takes IPv4:port and [IPv6]:port by default, with a port in 1-65535', () => {
    assert.deepEqual(parseHostPort('192.0.2.1:51820'), { host: '192.0.2.1', port: 51820 });
    assert.deepEqual(parseHostPort('[2001:db8::1]:1'), { host: '2001:db8::1', port: 1 });
    assert.deepEqual(parseHostPort('[::ffff:192.0.2.1]:65535'), { host: '::ffff:192.0.2.1', port: 65535 });
    assert.deepEqual(parseHostPort('[fe80::1%eth0]:51820'), { host: 'fe80::1%eth0', port: 51820 });
  });

  it('refuses the rest by default, naming the problem and the text', () => {
    const cases: [string, RegExp][] = [
      ['192.0.2.1', /expected IPv4:port or \[IPv6\]:port$/],
      ['192.0.2.1:0', /port "0" is not a number from 1 to 65535/],
      ['192.0.2.1:65536', /port "65536" is not a number from 1 to 65535/],
      ['192.0.2.1:', /port "" is not a number/],
      ['192.0.2.1:+80', /port "\+80"/],
      ['192.0.2.1:000080', /port "000080"/],
      ['2001:db8::1:51820', /write an IPv6 address in brackets, as \[2001:db8::1\]:51820/],
      ['[192.0.2.1]:80', /"192.0.2.1" is not an IPv6 address/],
      ['[::1]', /expected/],
      ['[::1]80', /expected/],
      ['[::1:80', /expected/],
      ['vpn.example.org:51820', /"vpn.example.org" is not an IPv4 address$/],
      ['10.0.0.300:80', /"10.0.0.300" is not an IPv4 address/],
      [':80', /expected IPv4:port/],
      ['', /expected/],
    ];
    for (const [text, why] of cases) refuses(text, why, () => parseHostPort(text));
  });

  it('names the value as the caller asks, and keeps the reason apart for callers that word it themselves', () => {
    assert.throws(
      () => parseHostPort('x:1', { what: '--api-listen' }),
      (e: unknown) =>
        e instanceof HostPortError &&
        e.message === '--api-listen "x:1": "x" is not an IPv4 address' &&
        e.reason === '"x" is not an IPv4 address' &&
        e.text === 'x:1',
    );
  });

  it('names: takes DNS names, but not what only looks like a mistyped address', () => {
    assert.deepEqual(parseHostPort('vpn.example.org:51820', { names: true }), { host: 'vpn.example.org', port: 51820 });
    assert.deepEqual(parseHostPort('localhost:1', { names: true }), { host: 'localhost', port: 1 });
    assert.deepEqual(parseHostPort('vpn.example.org.:1', { names: true }), { host: 'vpn.example.org.', port: 1 });
    refuses('10.0.0.300:1', /"10.0.0.300" is not an IPv4 address or host name/, () => parseHostPort('10.0.0.300:1', { names: true }));
    refuses('bad host:1', /"bad host" is not an IPv4 address or host name/, () => parseHostPort('bad host:1', { names: true }));
    refuses('a..b:1', /host name/, () => parseHostPort('a..b:1', { names: true }));
    refuses('-a.b:1', /host name/, () => parseHostPort('-a.b:1', { names: true }));
    refuses('[vpn.example.org]:1', /is not an IPv6 address/, () => parseHostPort('[vpn.example.org]:1', { names: true }));
    refuses('h', /expected host:port or \[IPv6\]:port$/, () => parseHostPort('h', { names: true }));
    assert.ok(isHostName(`${'a'.repeat(63)}.b`));
    assert.ok(!isHostName(`${'a'.repeat(64)}.b`));
    assert.ok(!isHostName(`${'a.'.repeat(127)}a`), 'over 253 characters');
  });

  it('anyHost: ":port" means every local address', () => {
    assert.deepEqual(parseHostPort(':9586', { anyHost: true }), { host: undefined, port: 9586 });
    assert.deepEqual(parseHostPort('127.0.0.1:9586', { anyHost: true }), { host: '127.0.0.1', port: 9586 });
    refuses('9586', /expected IPv4:port, \[IPv6\]:port or :port$/, () => parseHostPort('9586', { anyHost: true }));
  });

  it('portZero: takes port 0 (the kernel picks one)', () => {
    assert.deepEqual(parseHostPort('0.0.0.0:0', { portZero: true }), { host: '0.0.0.0', port: 0 });
    refuses('0.0.0.0:65536', /port "65536" is not a number from 0 to 65535/, () => parseHostPort('0.0.0.0:65536', { portZero: true }));
  });

  it('portOptional: the port may be left out', () => {
    assert.deepEqual(parseHostPort('192.0.2.7', { portOptional: true }), { host: '192.0.2.7', port: undefined });
    assert.deepEqual(parseHostPort('[2001:db8::7]', { portOptional: true }), { host: '2001:db8::7', port: undefined });
    assert.deepEqual(parseHostPort('[2001:db8::7]:4711', { portOptional: true }), { host: '2001:db8::7', port: 4711 });
    refuses('[2001:db8::7]x', /expected/, () => parseHostPort('[2001:db8::7]x', { portOptional: true }));
    refuses('2001:db8::7', /in brackets/, () => parseHostPort('2001:db8::7', { portOptional: true }));
  });

  it('writes addresses back the way it reads them', () => {
    for (const text of ['127.0.0.1:9586', '[::1]:9586', 'localhost:1', '[fe80::1%eth0]:2']) {
      assert.equal(formatHostPort(parseHostPort(text, { names: true })), text);
    }
    assert.equal(formatHostPort(parseHostPort(':9586', { anyHost: true })), ':9586');
  });
});

describe('Endpoint.parse', () => {
  it('takes numeric endpoints, IPv4-mapped ones as IPv4', () => {
    assert.equal(Endpoint.parse('192.0.2.1:51820').toString(), '192.0.2.1:51820');
    assert.equal(Endpoint.parse('[2001:db8::1]:51820').toString(), '[2001:db8::1]:51820');
    const mapped = Endpoint.parse('[::ffff:192.0.2.1]:51820');
    assert.equal(mapped.family, 4);
    assert.equal(mapped.address, '192.0.2.1');
  });

  it('refuses names, port 0 and unbracketed IPv6, naming the endpoint', () => {
    assert.throws(
      () => Endpoint.parse('vpn.example.org:51820'),
      /^HostPortError: endpoint "vpn.example.org:51820": "vpn.example.org" is not an IPv4 address$/,
    );
    assert.throws(() => Endpoint.parse('192.0.2.1:0'), /endpoint "192.0.2.1:0": port "0" is not a number from 1 to 65535/);
    assert.throws(() => Endpoint.parse('2001:db8::1:51820'), /endpoint "2001:db8::1:51820": write an IPv6 address in brackets/);
  });
});
