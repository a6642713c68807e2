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
  writeSegment,
  type VnetHeader,
} from '../src/gso.js';

const SRC4 = [10, 1, 2, 3];
const DST4 = [10, 9, 8, 7];
const SRC6 = Buffer.from('fd000000000000000000000000000001', 'hex');
const DST6 = Buffer.from('fd000000000000000000000000000002', 'hex');

/** A TCP super-packet as the kernel hands it with TSO: one IP header, one TCP header (with options), a long payload. */
function tcpSuper(version: 4 | 6, payload: Buffer, flags = 0x18 /* PSH ACK */): Buffer {
  const ip = version === 4 ? 20 : 40;
  const tcpLen = 32; // 12 bytes of options, as Linux sends timestamps
  const p = Buffer.alloc(ip + tcpLen + payload.length);
  if (version === 4) {
    p[0] = 0x45;
    p.writeUInt16BE(p.length > 65535 ? 0 : p.length, 2);
    p.writeUInt16BE(0x1234, 4);
    p[8] = 64;
    p[9] = 6;
    Buffer.from(SRC4).copy(p, 12);
    Buffer.from(DST4).copy(p, 16);
  } else {
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = 6;
    p[7] = 64;
    SRC6.copy(p, 8);
    DST6.copy(p, 24);
  }
  const t = ip;
  p.writeUInt16BE(40000, t);
  p.writeUInt16BE(5201, t + 2);
  p.writeUInt32BE(0xfffff000, t + 4); // wraps inside the packet
  p.writeUInt32BE(77, t + 8);
  p[t + 12] = (tcpLen / 4) << 4;
  p[t + 13] = flags;
  p.writeUInt16BE(502, t + 14);
  p.fill(1, t + 20, t + tcpLen); // NOPs
  payload.copy(p, ip + tcpLen);
  return p;
}

function udpSuper(version: 4 | 6, payload: Buffer): Buffer {
  const ip = version === 4 ? 20 : 40;
  const p = Buffer.alloc(ip + 8 + payload.length);
  if (version === 4) {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p[8] = 64;
    p[9] = 17;
    Buffer.from(SRC4).copy(p, 12);
    Buffer.from(DST4).copy(p, 16);
  } else {
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = 17;
    p[7] = 64;
    SRC6.copy(p, 8);
    DST6.copy(p, 24);
  }
  p.writeUInt16BE(5353, ip);
  p.writeUInt16BE(9999, ip + 2);
  payload.copy(p, ip + 8);
  return p;
}

/** Checks a segment as a receiving stack would: every checksum sums to 0xffff. */
function verify(seg: Buffer): { version: number; l4: number; proto: number } {
  const version = seg[0]! >> 4;
  let l4: number;
  let pseudo: number;
  let proto: number;
  if (version === 4) {
    assert.equal(seg.readUInt16BE(2), seg.length, 'IPv4 total length');
    assert.equal(sum16(seg, 0, 20, 0), 0xffff, 'IPv4 header checksum');
    l4 = 20;
    proto = seg[9]!;
    pseudo = sum16(seg, 12, 8, proto + seg.length - l4);
  } else {
    assert.equal(seg.readUInt16BE(4), seg.length - 40, 'IPv6 payload length');
    l4 = 40;
    proto = seg[6]!;
    pseudo = sum16(seg, 8, 32, proto + seg.length - l4);
  }
  assert.equal(sum16(seg, l4, seg.length - l4, pseudo), 0xffff, 'transport checksum');
  if (proto === 17) assert.equal(seg.readUInt16BE(l4 + 4), seg.length - l4, 'UDP length');
  return { version, l4, proto };
}

function split(pkt: Buffer, h: VnetHeader): Buffer[] {
  const n = segmentCount(pkt, 0, pkt.length, h);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const buf = Buffer.alloc(pkt.length + 100);
    const len = writeSegment(pkt, 0, pkt.length, h, i, buf, 7);
    out.push(buf.subarray(7, 7 + len));
  }
  return out;
}

describe('GSO segmentation (TUN offloads)', () => {
  for (const version of [4, 6] as const) {
    it(`cuts a TCP/IPv${version} super-packet into MSS segments with correct headers and checksums`, () => {
      const payload = randomBytes(10_000);
      const pkt = tcpSuper(version, payload, 0x19 /* FIN PSH ACK */ | 0x80 /* CWR */);
      const ip = version === 4 ? 20 : 40;
      const h: VnetHeader = { flags: VNET_F_NEEDS_CSUM, gsoType: version === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6, gsoSize: 1368, csumStart: ip, csumOffset: 16 };
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
      assert.deepEqual(segs.map((s) => s.length - ip - 8), [1200, 1200, 1200, 400]);
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
    assert.throws(() => segmentCount(pkt, 0, pkt.length, { flags: 1, gsoType: VNET_GSO_UDP, gsoSize: 1000, csumStart: 20, csumOffset: 6 }), GsoError);
    assert.throws(() => segmentCount(pkt, 0, pkt.length, { flags: 1, gsoType: VNET_GSO_TCPV4, gsoSize: 0, csumStart: 20, csumOffset: 16 }), GsoError);
    assert.throws(() => segmentCount(pkt, 0, 30, { flags: 1, gsoType: VNET_GSO_TCPV4, gsoSize: 1000, csumStart: 20, csumOffset: 16 }), GsoError);
  });
});
