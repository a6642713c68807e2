// What the lab gives the suites besides namespaces: certificates for lab
// servers (src/lab-certs.ts), checked by openssl itself, and UDP datagrams as
// IP packets (src/lab-packets.ts), checked byte by byte.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labCa, labLeaf, udpPacket } from '../src/lab.js';

const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('lab certificates', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wct-certs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a CA whose leaves verify against it alone, for the name asked', () => {
    const ca = labCa(dir, 'ca');
    const leaf = labLeaf(dir, 'leaf', 'IP:198.18.0.1', ca);
    const self = labLeaf(dir, 'self', 'DNS:lab.example');
    assert.match(openssl('verify', '-CAfile', ca.cert, leaf.cert), /: OK/);
    assert.throws(() => openssl('verify', '-CAfile', ca.cert, self.cert));
    assert.match(openssl('x509', '-noout', '-ext', 'subjectAltName', '-in', leaf.cert), /IP Address:198\.18\.0\.1/);
    assert.match(openssl('x509', '-noout', '-ext', 'basicConstraints', '-in', ca.cert), /CA:TRUE/);
    assert.match(leaf.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.notEqual(leaf.fingerprint, self.fingerprint);
    assert.match(leaf.pem, /^-----BEGIN CERTIFICATE-----/);
  });

  it('says what openssl refused', () => {
    assert.throws(() => labLeaf(join(dir, 'missing'), 'x', 'IP:198.18.0.1'), /^Error: openssl req failed: /);
  });
});

describe('udpPacket', () => {
  it('builds an IPv4 datagram: header, ports, lengths, payload', () => {
    const p = udpPacket('10.0.0.1', '10.0.0.2', 'hello', { sport: 40000, dport: 9 });
    assert.equal(
      p.toString('hex'),
      '45000021000000004011000' + '00a0000010a000002' + '9c400009000d0000' + Buffer.from('hello').toString('hex'),
    );
  });

  it('builds an IPv6 datagram, with the default ports', () => {
    const p = udpPacket('fd00::1', 'fd00:0:0:0:0:0:0:2', Buffer.from([1, 2]));
    assert.equal(p.length, 40 + 8 + 2);
    assert.equal(p.toString('hex', 0, 8), '600000000' + '00a1140');
    assert.equal(p.toString('hex', 8, 40), 'fd000000000000000000000000000001' + 'fd000000000000000000000000000002');
    assert.equal(p.toString('hex', 40), '04d2162e000a0000' + '0102');
  });

  it('refuses mixed families and dotted IPv6 tails', () => {
    assert.throws(() => udpPacket('10.0.0.1', 'fd00::2', 'x'), /must be two IPv4 or two IPv6 addresses/);
    assert.throws(() => udpPacket('::ffff:10.0.0.1', '::ffff:10.0.0.2', 'x'), /hex groups only/);
  });
});
