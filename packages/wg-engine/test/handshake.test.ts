import assert from 'node:assert/strict';
import { generatePrivateKey, MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT } from '../src/index.js';
import { MemoryNet, linkedPair, ipv4Packet, ipv6Packet } from './fixtures/net.js';

describe('two engines in one process', () => {
  let net: MemoryNet;
  afterEach(() => net.close());

  function pair(psk?: Buffer) {
    const p = linkedPair({ psk });
    net = p.net;
    return p;
  }

  it('handshakes on the first packet and delivers it (staged, not dropped)', async () => {
    const { a, b } = pair();
    const first = ipv4Packet('10.0.0.1', '10.0.0.2', 'first');
    a.device.sendPacket(first);
    await net.run();
    const types = net.wire.map((d) => d.msg[0]);
    assert.deepEqual(types.slice(0, 3), [MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT]);
    assert.equal(b.received.length, 1);
    assert.deepEqual(b.received[0], first);

    b.device.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', 'reply'));
    await net.run();
    assert.equal(a.received.length, 1);
    assert.ok(a.received[0]!.subarray(28).equals(Buffer.from('reply')));
  });

  it('carries IPv6 inner packets', async () => {
    const { a, b } = pair();
    a.device.sendPacket(ipv6Packet('fd00::1', 'fd00::2', 'six'));
    await net.run();
    assert.equal(b.received.length, 1);
    assert.ok(b.received[0]!.subarray(48).equals(Buffer.from('six')));
  });

  it('stages up to 128 packets during the handshake and sends them all in order', async () => {
    const { a, b } = pair();
    for (let i = 0; i < 130; i++) a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', `p${i}`));
    await net.run();
    assert.equal(b.received.length, 128);
    assert.equal(b.received[0]!.subarray(28).toString(), 'p2');
    assert.equal(b.received[127]!.subarray(28).toString(), 'p129');
    assert.equal(a.device.drops.get('staged-overflow'), 2);
  });

  it('keeps its own copy of a staged packet, so the caller may reuse its buffer (as a TUN reader does)', async () => {
    const { a, b } = pair();
    const buf = ipv4Packet('10.0.0.1', '10.0.0.2', 'original');
    a.device.sendPacket(buf);
    buf.fill(0xee, 28);
    await net.run();
    assert.equal(b.received[0]!.subarray(28).toString(), 'original');
  });

  it('completes with a preshared key, and fails closed when the keys differ', async () => {
    const psk = generatePrivateKey();
    const { a, b } = pair(psk);
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
    await net.run();
    assert.equal(b.received.length, 1);

    b.device.setPeer(a.device.publicKey!, { presharedKey: generatePrivateKey() });
    a.device.getPeer(b.device.publicKey!)!.zeroKeyMaterial();
    net.clock.advance(6000);
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
    await net.run();
    assert.equal(b.received.length, 1);
    assert.equal(a.device.drops.get('handshake-decrypt'), 1, 'the initiator cannot open the response');
  });

  it('records handshake time and counts bytes both ways', async () => {
    const { a, b } = pair();
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
    await net.run();
    const pa = a.device.getPeer(b.device.publicKey!)!;
    const pb = b.device.getPeer(a.device.publicKey!)!;
    assert.equal(pa.lastHandshakeWallMs, net.clock.wallNow());
    assert.equal(pb.lastHandshakeWallMs, net.clock.wallNow(), 'the responder records it once the session is confirmed');
    assert.equal(pa.txBytes, pb.rxBytes);
    assert.equal(pb.txBytes, pa.rxBytes);
    assert.ok(pa.txBytes > 148);
  });

  it('drops packets whose inner source the peer is not allowed to use', async () => {
    const { a, b } = pair();
    a.device.setPeer(b.device.publicKey!, { allowedIps: [] });
    // A routes 10.9.9.9 to B, but B does not accept it from A.
    a.device.sendPacket(ipv4Packet('10.9.9.9', '10.0.0.2'));
    await net.run();
    assert.equal(b.received.length, 0);
    assert.equal(b.device.drops.get('allowed-ips'), 1);
  });

  it('drops replayed transport messages', async () => {
    const { a, b } = pair();
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
    await net.run();
    const data = net.wire.find((d) => d.msg[0] === MESSAGE_TRANSPORT && d.msg.length > 32)!;
    b.device.receiveUdp(Buffer.from(data.msg), data.from.address, data.from.port);
    assert.equal(b.received.length, 1);
    assert.equal(b.device.drops.get('replay'), 1);
  });

  it('follows a roaming peer to the address of its latest authenticated packet', async () => {
    const { a, b } = pair();
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2'));
    await net.run();
    const pb = b.device.getPeer(a.device.publicKey!)!;
    assert.equal(pb.endpoint!.toString(), '192.0.2.1:51001');
    // A's packets now arrive from a new address (NAT rebinding).
    a.device.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 'moved'));
    const d = net.queue.pop()!;
    net.queue = [];
    b.device.receiveUdp(Buffer.from(d.msg), '198.51.100.7', 40000);
    assert.equal(pb.endpoint!.toString(), '198.51.100.7:40000');
    // A forged packet from elsewhere does not move it.
    const forged = Buffer.from(d.msg);
    forged[forged.length - 1]! ^= 1;
    b.device.receiveUdp(forged, '203.0.113.9', 1);
    assert.equal(pb.endpoint!.toString(), '198.51.100.7:40000');
  });
});
