// ICMP errors for the peers: the bytes (icmp-error.ts), and the sender
// (icmp-error-sender.ts) in a namespace of its own, where a "peer" socket
// reads what it sends from its error queue, as a peer's kernel would take it.
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { Rtnl, bindSocket, connectSocket, createNetns, recvSocketError, socketAddress, socketInNetns } from '@wirecage/netns';
import { createLogger, parseCidr } from '@wirecage/wg-engine';
import { newCounters } from '../src/nat/counters.js';
import {
  ICMP4_DEST_UNREACH,
  ICMP4_FRAG_NEEDED,
  ICMP4_PORT_UNREACH,
  ICMP6_PACKET_TOO_BIG,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_UDP,
  buildIcmpError,
  errorForErrno,
  isRelayableError,
  quotedBytes,
  quotedUdp,
} from '../src/nat/icmp-error.js';
import { IcmpErrorSender } from '../src/nat/icmp-error-sender.js';
import { buildEcho, internetChecksum } from '../src/nat/icmp-message.js';

/** The transport checksum checked the plain way: over pseudo-header and segment laid out in one buffer. */
function transportChecksumOk(packet: Buffer, family: 4 | 6, proto: number): boolean {
  const header = family === 4 ? 20 : 40;
  const segment = packet.subarray(header);
  if (proto === IPPROTO_ICMP) return internetChecksum(segment) === 0;
  // Summed in 16-bit words, the pseudo-header is the addresses, the protocol and the segment's length, in any order.
  const addresses = family === 4 ? packet.subarray(12, 20) : packet.subarray(8, 40);
  const rest = Buffer.alloc(4);
  rest[1] = proto;
  rest.writeUInt16BE(segment.length, 2);
  return internetChecksum(Buffer.concat([addresses, rest, segment])) === 0;
}

describe('NAT ICMP error messages', () => {
  it("quotes a peer's UDP datagram with its own addresses and ports, checksums right (IPv4)", () => {
    const q = quotedBytes(quotedUdp(4, '10.200.100.2', 40000, '198.51.100.7', 53, Buffer.from('query')));
    assert.equal(q.length, 20 + 8 + 5);
    assert.equal(q[0], 0x45);
    assert.equal(q.readUInt16BE(2), 33, 'total length');
    assert.equal(q[9], IPPROTO_UDP);
    assert.equal(internetChecksum(q.subarray(0, 20)), 0, 'IP header checksum');
    assert.deepEqual([...q.subarray(12, 20)], [10, 200, 100, 2, 198, 51, 100, 7]);
    assert.deepEqual([q.readUInt16BE(20), q.readUInt16BE(22), q.readUInt16BE(24)], [40000, 53, 13]);
    assert.ok(transportChecksumOk(q, 4, IPPROTO_UDP));
    assert.equal(q.subarray(28).toString(), 'query');
  });

  it('quotes IPv6 UDP and echo requests with pseudo-header checksums; IPv4 echo without', () => {
    const u = quotedBytes(quotedUdp(6, 'fd00::2', 1234, '2001:db8::1', 443, Buffer.from('hello')));
    assert.equal(u[0]! >> 4, 6);
    assert.equal(u.readUInt16BE(4), 13, 'payload length');
    assert.equal(u[6], IPPROTO_UDP);
    assert.ok(parseCidr('fd00::2').address.equals(u.subarray(8, 24)));
    assert.ok(parseCidr('2001:db8::1').address.equals(u.subarray(24, 40)));
    assert.ok(transportChecksumOk(u, 6, IPPROTO_UDP));
    const echo6 = quotedBytes({
      family: 6,
      source: 'fd00::2',
      destination: '2001:db8::1',
      protocol: IPPROTO_ICMPV6,
      transport: buildEcho(128, 7, 9, Buffer.from('abc'), false),
    });
    assert.ok(transportChecksumOk(echo6, 6, IPPROTO_ICMPV6));
    const echo4 = quotedBytes({
      family: 4,
      source: '10.0.0.2',
      destination: '192.0.2.1',
      protocol: IPPROTO_ICMP,
      transport: buildEcho(8, 7, 9, Buffer.from('abcd'), false),
    });
    assert.ok(transportChecksumOk(echo4, 4, IPPROTO_ICMP));
    assert.deepEqual([echo4.readUInt16BE(24), echo4.readUInt16BE(26)], [7, 9], "the peer's identifier and sequence");
  });

  it('cuts the quote to what an error may carry (576 bytes in all for IPv4, 1280 for IPv6), keeping the full lengths in the headers', () => {
    const big = Buffer.alloc(3000, 0x61);
    const q4 = quotedBytes(quotedUdp(4, '10.0.0.2', 1, '192.0.2.1', 2, big));
    assert.equal(q4.length, 576 - 20 - 8);
    assert.equal(q4.readUInt16BE(2), 3028);
    assert.equal(q4.readUInt16BE(24), 3008);
    const q6 = quotedBytes(quotedUdp(6, 'fd00::2', 1, '2001:db8::1', 2, big));
    assert.equal(q6.length, 1280 - 40 - 8);
    assert.equal(q6.readUInt16BE(4), 3008);
  });

  it('builds the error: type, code, MTU where it belongs, ICMPv4 checksum filled, ICMPv6 left to the kernel', () => {
    const quoted = quotedBytes(quotedUdp(4, '10.0.0.2', 1, '192.0.2.1', 2, Buffer.from('x')));
    const unreach = buildIcmpError(4, ICMP4_DEST_UNREACH, ICMP4_PORT_UNREACH, 0, quoted);
    assert.deepEqual([unreach[0], unreach[1], unreach.readUInt32BE(4)], [3, 3, 0]);
    assert.equal(internetChecksum(unreach), 0);
    assert.ok(unreach.subarray(8).equals(quoted));
    const frag = buildIcmpError(4, ICMP4_DEST_UNREACH, ICMP4_FRAG_NEEDED, 1280, quoted);
    assert.equal(frag.readUInt16BE(6), 1280);
    assert.equal(internetChecksum(frag), 0);
    const ptb = buildIcmpError(
      6,
      ICMP6_PACKET_TOO_BIG,
      0,
      1400,
      quotedBytes(quotedUdp(6, 'fd00::2', 1, '2001:db8::1', 2, Buffer.from('x'))),
    );
    assert.deepEqual([ptb[0], ptb[1], ptb.readUInt16BE(2), ptb.readUInt32BE(4)], [2, 0, 0, 1400]);
  });

  it('passes on unreachables, time exceeded and packet too big only; maps a missing route to the unreachable a router sends', () => {
    assert.deepEqual(
      [3, 11, 5, 12, 0].map((t) => isRelayableError(4, t)),
      [true, true, false, false, false],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 129].map((t) => isRelayableError(6, t)),
      [true, true, true, false, false],
    );
    assert.deepEqual(errorForErrno(4, 'ENETUNREACH'), { type: 3, code: 0 });
    assert.deepEqual(errorForErrno(4, 'EHOSTUNREACH'), { type: 3, code: 1 });
    assert.deepEqual(errorForErrno(6, 'ENETUNREACH'), { type: 1, code: 0 });
    assert.deepEqual(errorForErrno(6, 'EHOSTUNREACH'), { type: 1, code: 3 });
    assert.equal(errorForErrno(4, 'ECONNREFUSED'), null);
  });
});

describe('NAT ICMP error sender', () => {
  let ns = -1;
  let sender: IcmpErrorSender;
  let clock: () => number = Date.now;
  const counters = newCounters();
  const logs: string[] = [];
  const fds: number[] = [];

  before(() => {
    ns = createNetns();
    const nl = Rtnl.open(ns);
    nl.setUp('lo');
    // On lo, so that fd00:99::2 has a route (the kernel answers to nothing there).
    nl.addAddress('lo', 'fd00:99::1/64');
    nl.close();
    // 127.0.0.9 and fd00:99::9 stand in for the gateways; the "peer" is a socket on loopback.
    sender = IcmpErrorSender.open({
      netnsFd: ns,
      gateway4: '127.0.0.9',
      gateway6: 'fd00:99::9',
      counters,
      log: createLogger('debug', (l) => logs.push(l)),
      now: () => clock(),
    })!;
    assert.ok(sender, logs.join('\n'));
  });

  after(() => {
    sender?.close();
    for (const fd of fds) closeSync(fd);
    if (ns >= 0) closeSync(ns);
  });

  /** A connected UDP socket in the namespace, as the peer's program would hold one, with its error queue readable. */
  function peerSocket(family: 4 | 6, local: string, remote: string, remotePort: number): { fd: number; port: number } {
    const fd = socketInNetns(ns, family, 'udp', { recvErr: true });
    fds.push(fd);
    bindSocket(fd, local, 0);
    connectSocket(fd, remote, remotePort);
    return { fd, port: socketAddress(fd).port };
  }

  it("delivers a port unreachable from the destination and a host unreachable from the gateway, which the peer's kernel matches to its socket", () => {
    const p = peerSocket(4, '127.0.0.1', '127.0.0.2', 9);
    const quoted = quotedUdp(4, '127.0.0.1', p.port, '127.0.0.2', 9, Buffer.from('hello?'));
    assert.equal(sender.relay(quoted, { origin: 'icmp', type: 3, code: 3, info: 0, offender: '127.0.0.2' }), true);
    assert.equal(sender.relay(quoted, { origin: 'icmp', type: 3, code: 1, info: 0, offender: '198.51.100.1' }), true);
    // Not an error to pass on: a local one, and a redirect.
    assert.equal(sender.relay(quoted, { origin: 'local', type: 0, code: 0, info: 0, offender: null }), false);
    assert.equal(sender.relay(quoted, { origin: 'icmp', type: 5, code: 1, info: 0, offender: '127.0.0.2' }), false);
    const buf = Buffer.alloc(64);
    const refused = recvSocketError(p.fd, buf);
    assert.deepEqual(refused && { ...refused, quoted: buf.subarray(0, refused.length).toString() }, {
      error: 'ECONNREFUSED',
      origin: 'icmp',
      type: 3,
      code: 3,
      info: 0,
      offender: '127.0.0.2',
      length: 6,
      truncated: false,
      quoted: 'hello?',
    });
    const unreachable = recvSocketError(p.fd, buf);
    assert.deepEqual(unreachable && [unreachable.error, unreachable.type, unreachable.code, unreachable.offender], [
      'EHOSTUNREACH',
      3,
      1,
      '127.0.0.9',
    ]);
    assert.equal(recvSocketError(p.fd, buf), null);
  });

  it('delivers IPv6 errors, and an unreachable for a datagram the host had no route for', () => {
    const p = peerSocket(6, 'fd00:99::1', 'fd00:99::2', 9);
    const quoted = quotedUdp(6, 'fd00:99::1', p.port, 'fd00:99::2', 9, Buffer.from('v6'));
    assert.equal(sender.relay(quoted, { origin: 'icmp6', type: 1, code: 4, info: 0, offender: 'fd00:99::2' }), true);
    assert.equal(sender.unreachable(quoted, 'ENETUNREACH'), true);
    assert.equal(sender.unreachable(quoted, 'EAGAIN'), false);
    const buf = Buffer.alloc(64);
    const refused = recvSocketError(p.fd, buf);
    assert.deepEqual(refused && [refused.error, refused.origin, refused.type, refused.code, refused.offender], [
      'ECONNREFUSED',
      'icmp6',
      1,
      4,
      'fd00:99::2',
    ]);
    const noRoute = recvSocketError(p.fd, buf);
    assert.deepEqual(noRoute && [noRoute.error, noRoute.type, noRoute.code, noRoute.offender], ['ENETUNREACH', 1, 0, 'fd00:99::9']);
  });

  it('sends at most a burst of 50 at once, counting what it held back', () => {
    const p = peerSocket(4, '127.0.0.1', '127.0.0.3', 9);
    const quoted = quotedUdp(4, '127.0.0.1', p.port, '127.0.0.3', 9, Buffer.from('x'));
    const [sent, limited] = [counters.icmpErrors, counters.icmpErrorsLimited];
    // The clock stands still during the loop (a second on, so the bucket is full): no token comes back however slow the machine.
    const at = Date.now() + 1000;
    clock = () => at;
    let ok = 0;
    try {
      for (let i = 0; i < 80; i++) if (sender.relay(quoted, { origin: 'icmp', type: 3, code: 3, info: 0, offender: '127.0.0.3' })) ok++;
    } finally {
      clock = Date.now;
    }
    assert.equal(ok, 50);
    assert.equal(counters.icmpErrors - sent, 50);
    assert.equal(counters.icmpErrorsLimited - limited, 30);
  });
});
