import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GRO_MAX_SEGMENTS, coalesceTcp } from '../src/gro.js';
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_HDR_LEN,
  finishPartialChecksum,
  readVnetHeader,
  sum16,
  writePlainVnetHeader,
  type VnetHeader,
} from '../src/gso.js';
import { split, tcpSuper, verify } from './tcp-udp-packets.js';

const ACK = 0x10;
const PSH_ACK = 0x18;

/** MSS-sized segments of one flow, as a sender's stack puts them on the wire (valid checksums, ids counting up). */
function segments(version: 4 | 6, payloadBytes: number, mss: number, flags = PSH_ACK): Buffer[] {
  const ip = version === 4 ? 20 : 40;
  const h: VnetHeader = {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: version === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6,
    gsoSize: mss,
    csumStart: ip,
    csumOffset: 16,
  };
  // A flow longer than one super-packet is cut from several, each going on where the last ended.
  const chunk = Math.floor(60_000 / mss) * mss;
  const out: Buffer[] = [];
  for (let done = 0; done < payloadBytes; done += chunk) {
    const bytes = Math.min(chunk, payloadBytes - done);
    const last = done + bytes === payloadBytes;
    const segs = split(tcpSuper(version, randomBytes(bytes), last ? flags : ACK), h);
    out.push(...segs.map((seg) => shiftSeq(seg, version, done, out.length)));
  }
  return out;
}

interface Laid {
  u8: Uint8Array;
  offs: Int32Array;
  lens: Int32Array;
  gather: Int32Array;
}

/** Packets as decrypted ingress slots hold them: a plain virtio_net_hdr, then the packet, apart from each other. */
function lay(packets: Buffer[]): Laid {
  const room = 64;
  const u8 = new Uint8Array(packets.reduce((t, p) => t + room + VNET_HDR_LEN + p.length, 0));
  const offs = new Int32Array(packets.length);
  const lens = new Int32Array(packets.length);
  let at = 0;
  packets.forEach((p, k) => {
    at += room;
    writePlainVnetHeader(u8, at, VNET_F_DATA_VALID);
    u8.set(p, at + VNET_HDR_LEN);
    offs[k] = at;
    lens[k] = VNET_HDR_LEN + p.length;
    at += VNET_HDR_LEN + p.length;
  });
  return { u8, offs, lens, gather: new Int32Array(packets.length).fill(99) };
}

/** What the TUN writer writes for packet k: its bytes, then those of the packets it gathers. */
function written(l: Laid, k: number): Buffer {
  const parts: Uint8Array[] = [];
  for (let j = k; j <= k + Math.max(0, l.gather[k]!); j++) parts.push(l.u8.subarray(l.offs[j], l.offs[j]! + l.lens[j]!));
  return Buffer.concat(parts);
}

function coalesce(packets: Buffer[]): { joined: number; l: Laid } {
  const l = lay(packets);
  const joined = coalesceTcp(l.u8, l.offs, l.lens, l.gather, packets.length);
  return { joined, l };
}

/** The kernel's view of a coalesced write: its header, and the segments it cuts it back into. */
function resegment(write: Buffer): { h: VnetHeader; segs: Buffer[] } {
  const h = readVnetHeader(write, 0, { flags: 0, gsoType: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
  return { h, segs: split(write.subarray(VNET_HDR_LEN), h) };
}

describe('TCP coalescing for TUN writes (GRO)', () => {
  for (const version of [4, 6] as const) {
    it(`joins a run of TCP/IPv${version} segments into one GSO write that cuts back into the very same segments`, () => {
      const segs = segments(version, 20_000, 1368);
      assert.equal(segs.length, 15);
      const { joined, l } = coalesce(segs);
      assert.equal(joined, 14);
      assert.deepEqual([...l.gather], [14, ...Array<number>(14).fill(-1)]);
      const write = written(l, 0);
      const { h, segs: back } = resegment(write);
      const ip = version === 4 ? 20 : 40;
      assert.deepEqual(h, {
        flags: VNET_F_NEEDS_CSUM,
        gsoType: version === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6,
        gsoSize: 1368,
        csumStart: ip,
        csumOffset: 16,
      });
      assert.equal(write.readUInt16LE(2), ip + 32, 'hdr_len: IP and TCP headers');
      assert.equal(back.length, segs.length);
      back.forEach((s, i) => assert.deepEqual(s, segs[i], `segment ${i}`));
      // Delivered whole, the stack finishes the checksum from the pseudo-header sum in the field.
      const whole = Buffer.from(write.subarray(VNET_HDR_LEN));
      assert.equal(whole[ip + 13], PSH_ACK, "the last segment's PSH is the super-packet's");
      finishPartialChecksum(whole, 0, whole.length, ip, 16);
      verify(whole);
    });
  }

  it(`joins at most ${GRO_MAX_SEGMENTS} segments, and never more than 64 KiB`, () => {
    const small = coalesce(segments(4, 100 * 500, 500));
    assert.equal(small.l.gather[0], GRO_MAX_SEGMENTS - 1);
    assert.equal(small.l.gather[GRO_MAX_SEGMENTS], 100 - GRO_MAX_SEGMENTS - 1);
    assert.equal(small.joined, 98);
    const big = coalesce(segments(6, 60 * 1368, 1368));
    const first = big.l.gather[0]! + 1;
    assert.equal(first, Math.floor((65535 - 72) / 1368));
    assert.ok(written(big.l, 0).length - VNET_HDR_LEN <= 65535);
    assert.equal(big.l.gather[first], 60 - first - 1);
    for (const l of [small.l, big.l]) {
      for (let k = 0; k < l.gather.length; k++) {
        if (l.gather[k]! >= 0) for (const s of resegment(written(l, k)).segs) verify(s);
      }
    }
  });

  it('ends a group at a short segment or a pushed one; a push on the last segment joins', () => {
    // 3 full segments and a short one with PSH: all four join.
    const four = segments(4, 3 * 1000 + 10, 1000);
    assert.equal(coalesce(four).joined, 3);
    // A short segment in the middle: what follows starts a new group.
    const a = segments(4, 1000 + 500, 1000, ACK);
    const b = segments(4, 2000, 1000, ACK).map((s) => shiftSeq(s, 4, 1500, 2));
    const mixed = coalesce([...a, ...b]);
    assert.deepEqual([...mixed.l.gather], [1, -1, 1, -1]);
    // A pushed segment in the middle ends its group too.
    const pushed = segments(4, 1000, 1000, PSH_ACK);
    const after = segments(4, 1000, 1000, ACK).map((s) => shiftSeq(s, 4, 1000, 1));
    assert.deepEqual([...coalesce([...pushed, ...after]).l.gather], [0, 0]);
  });

  it('joins only segments that continue one another in the same flow, with the same headers', () => {
    const base = () => segments(4, 2000, 1000, ACK);
    const cases: [string, (second: Buffer) => void][] = [
      ['a gap in the sequence', (s) => s.writeUInt32BE(s.readUInt32BE(24) + 1, 24)],
      ['another source port', (s) => s.writeUInt16BE(40001, 20)],
      ['another acknowledgment', (s) => s.writeUInt32BE(78, 28)],
      ['another window', (s) => s.writeUInt16BE(503, 34)],
      ['other TCP options (a newer timestamp)', (s) => (s[45] = 2)],
      ['another TTL', (s) => (s[8] = 63)],
      ['another TOS', (s) => (s[1] = 4)],
      ['another destination', (s) => (s[19] = 8)],
      ['an IPv4 id that does not count up (no DF)', (s) => s.writeUInt16BE(0x1000, 4)],
      ['a FIN', (s) => (s[33] = 0x11)],
      ['an RST', (s) => (s[33] = 0x14)],
      ['CWR', (s) => (s[33] = 0x90)],
      ['a fragment', (s) => s.writeUInt16BE(0x2000, 6)],
    ];
    for (const [what, change] of cases) {
      const [first, second] = base();
      change(second!);
      const { joined, l } = coalesce([first!, second!]);
      assert.equal(joined, 0, what);
      assert.deepEqual([...l.gather], [0, 0], what);
      assert.equal(l.u8[l.offs[0]!], VNET_F_DATA_VALID, `${what}: the header is left as it was`);
    }
    // With DF, ids need not count up (Linux sends DF segments with any id).
    const [first, second] = base();
    for (const s of [first!, second!]) s.writeUInt16BE(s.readUInt16BE(6) | 0x4000, 6);
    second!.writeUInt16BE(7, 4);
    assert.equal(coalesce([first!, second!]).joined, 1);
  });

  it('leaves alone what is not plain TCP data: UDP, SYNs, bare ACKs, IPv4 options, lone and absent packets', () => {
    const [tcp1, tcp2] = segments(4, 2000, 1000, ACK);
    const syn = Buffer.from(tcp1!);
    syn[33] = 0x12;
    const bareAck = Buffer.from(tcp1!.subarray(0, 52));
    bareAck.writeUInt16BE(52, 2);
    const udp = Buffer.from(tcp1!);
    udp[9] = 17;
    const withOptions = Buffer.alloc(tcp1!.length + 4);
    withOptions[0] = 0x46;
    const { joined, l } = coalesce([syn, tcp2!, bareAck, tcp2!, udp, tcp2!, withOptions, tcp2!]);
    assert.equal(joined, 0);
    assert.ok(l.gather.every((g) => g === 0));
    // An absent packet (length 0: dropped by the shard) splits a run.
    const run = segments(4, 3000, 1000, ACK);
    const laid = lay(run);
    laid.lens[1] = 0;
    assert.equal(coalesceTcp(laid.u8, laid.offs, laid.lens, laid.gather, 3), 0);
  });

  it('joins only neighbours: two interleaved flows stay as they are', () => {
    const a = segments(4, 2000, 1000, ACK);
    const b = segments(4, 2000, 1000, ACK).map((s) => {
      s.writeUInt16BE(40002, 20);
      return s;
    });
    assert.equal(coalesce([a[0]!, b[0]!, a[1]!, b[1]!]).joined, 0);
  });
});

/** The segment with its sequence number moved by `by` and its IPv4 id by `ids`, checksums kept right. */
function shiftSeq(s: Buffer, version: 4 | 6, by: number, ids: number): Buffer {
  if (by === 0 && ids === 0) return s;
  const t = version === 4 ? 20 : 40;
  s.writeUInt32BE((s.readUInt32BE(t + 4) + by) >>> 0, t + 4);
  if (version === 4) {
    s.writeUInt16BE((s.readUInt16BE(4) + ids) & 0xffff, 4);
    s.writeUInt16BE(0, 10);
    s.writeUInt16BE(~sum16(s, 0, 20, 0) & 0xffff, 10);
  }
  s.writeUInt16BE(0, t + 16);
  finishPartialChecksum(s, 0, s.length, t, 16);
  return s;
}
