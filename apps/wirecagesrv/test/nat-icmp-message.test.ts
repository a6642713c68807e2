import assert from 'node:assert/strict';
import { ICMP4_ECHO_REQUEST, buildEcho, icmpInIpv4, internetChecksum, parseEcho } from '../src/nat/icmp-message.js';

/** An IPv4 header (20 bytes, checksum left 0: the raw socket's reader does not check it) around `icmp`. */
function ipv4(icmp: Buffer, o: { protocol?: number; fragment?: number; total?: number } = {}): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(o.total ?? 20 + icmp.length, 2);
  h.writeUInt16BE(o.fragment ?? 0x4000, 6);
  h[8] = 64;
  h[9] = o.protocol ?? 1;
  h.set([10, 200, 100, 2], 12);
  h.set([198, 51, 100, 2], 16);
  return Buffer.concat([h, icmp]);
}

describe('ICMP echo messages', () => {
  it('computes the Internet checksum (RFC 1071 example, odd lengths)', () => {
    assert.equal(internetChecksum(Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), ~0xddf2 & 0xffff);
    assert.equal(internetChecksum(Buffer.from([0xab])), ~0xab00 & 0xffff);
    assert.equal(internetChecksum(Buffer.alloc(0)), 0xffff);
  });

  it('builds an echo whose checksum verifies, and parses it back', () => {
    const m = buildEcho(ICMP4_ECHO_REQUEST, 0xbeef, 513, Buffer.from('payload!'), true);
    assert.equal(internetChecksum(m), 0);
    const e = parseEcho(m)!;
    assert.deepEqual([e.type, e.code, e.id, e.seq, e.payload.toString()], [8, 0, 0xbeef, 513, 'payload!']);
    assert.equal(buildEcho(128, 1, 2, Buffer.alloc(3), false).readUInt16BE(2), 0, 'left for the kernel');
    assert.equal(parseEcho(Buffer.alloc(7)), null);
  });

  it('takes the ICMP message out of an IPv4 packet, refusing what is not a whole, valid one', () => {
    const icmp = buildEcho(ICMP4_ECHO_REQUEST, 1, 1, Buffer.from('abc'), true);
    assert.deepEqual(icmpInIpv4(ipv4(icmp)), icmp);
    // Trailing bytes past the IP total length are not part of it.
    assert.deepEqual(icmpInIpv4(Buffer.concat([ipv4(icmp), Buffer.alloc(5)])), icmp);
    const bad = Buffer.from(icmp);
    bad[9] = 0x99;
    assert.equal(icmpInIpv4(ipv4(bad)), null, 'bad checksum');
    assert.equal(icmpInIpv4(ipv4(icmp, { protocol: 17 })), null, 'not ICMP');
    assert.equal(icmpInIpv4(ipv4(icmp, { fragment: 0x2000 })), null, 'a fragment');
    assert.equal(icmpInIpv4(ipv4(icmp, { total: 200 })), null, 'cut short');
    assert.equal(icmpInIpv4(Buffer.from([0x60, 0, 0, 0])), null, 'not IPv4');
  });
});
