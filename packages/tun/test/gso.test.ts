import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  GsoError,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP,
  VNET_GSO_UDP_L4,
  segmentCount,
  sum16,
  type VnetHeader,
} from '../src/gso.js';
import { split, tcpSuper, udpSuper, verify } from './tcp-udp-packets.js';

describe('GSO segmentation (TUN offloads)', () => {
  for (const version of [4, 6] as const) {
    it(`cuts a TCP/IPv${version} super-packet into MSS segments with correct headers and checksums`, () => {
      const payload = randomBytes(10_000);
      const pkt = tcpSuper(version, payload, 0x19 /* FIN PSH ACK */ | 0x80 /* CWR */);
      const ip = version === 4 ? 20 : 40;
      const h: VnetHeader = {
        flags: VNET_F_NEEDS_CSUM,
        gsoType: version === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6,
        gsoSize: 1368,
        csumStart: ip,
        csumOffset: 16,
      };
      const segs = split(pkt, h);
      assert.equal(segs.length, Math.ceil(10_000 / 1368));
      const joined: Buffer[] = [];
      segs.forEach((s, i) => {
        verify(s);
        const t = ip;
        assert.equal(s.readUInt32BE(t + 4), (0xfffff000 + i * 1368) >>> 0, 'sequence number');
        assert.equal(s.readUInt32BE(t + 8), 77, 'ack number');
        const last = i === segs.length - 1;
        assert.equal(s[t + 13]! & 0x01, last ? 1 : 0, 'FIN only on the last');
        assert.equal(s[t + 13]! & 0x08, last ? 8 : 0, 'PSH only on the last');
        assert.equal(s[t + 13]! & 0x80, i === 0 ? 0x80 : 0, 'CWR only on the first');
        if (version === 4) assert.equal(s.readUInt16BE(4), (0x1234 + i) & 0xffff, 'IPv4 id');
        assert.ok(s.length <= ip + 32 + 1368);
        joined.push(s.subarray(ip + 32));
      });
      assert.deepEqual(Buffer.concat(joined), payload);
    });

    it(`cuts a UDP/IPv${version} super-packet (USO) into datagrams`, () => {
      const payload = randomBytes(4000);
      const pkt = udpSuper(version, payload);
      const ip = version === 4 ? 20 : 40;
      const segs = split(pkt, { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, csumStart: ip, csumOffset: 6 });
      assert.deepEqual(
        segs.map((s) => s.length - ip - 8),
        [1200, 1200, 1200, 400],
      );
      for (const s of segs) assert.equal(verify(s).proto, 17);
      assert.deepEqual(Buffer.concat(segs.map((s) => s.subarray(ip + 8))), payload);
    });
  }

  it('finishes a checksum the kernel left partial (NEEDS_CSUM without GSO)', () => {
    const pkt = tcpSuper(4, randomBytes(333));
    // The kernel leaves the pseudo-header sum in the field and asks for the rest.
    const t = 20;
    pkt.writeUInt16BE(sum16(pkt, 12, 8, 6 + pkt.length - t), t + 16);
    pkt.writeUInt16BE(sum16(pkt, 0, 20, 0) ^ 0xffff, 10);
    const [seg] = split(pkt, { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_NONE, gsoSize: 0, csumStart: t, csumOffset: 16 });
    verify(seg!);
  });

  it('passes a plain packet through untouched', () => {
    const pkt = tcpSuper(6, randomBytes(100));
    const [seg] = split(pkt, { flags: 0, gsoType: VNET_GSO_NONE, gsoSize: 0, csumStart: 0, csumOffset: 0 });
    assert.deepEqual(seg, pkt);
  });

  it('refuses what it cannot cut correctly', () => {
    const pkt = tcpSuper(4, randomBytes(3000));
    assert.throws(
      () => segmentCount(pkt, 0, pkt.length, { flags: 1, gsoType: VNET_GSO_UDP, gsoSize: 1000, csumStart: 20, csumOffset: 6 }),
      GsoError,
    );
    assert.throws(
      () => segmentCount(pkt, 0, pkt.length, { flags: 1, gsoType: VNET_GSO_TCPV4, gsoSize: 0, csumStart: 20, csumOffset: 16 }),
      GsoError,
    );
    assert.throws(
      () => segmentCount(pkt, 0, 30, { flags: 1, gsoType: VNET_GSO_TCPV4, gsoSize: 1000, csumStart: 20, csumOffset: 16 }),
      GsoError,
    );
  });
});
