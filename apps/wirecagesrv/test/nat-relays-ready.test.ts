// /readyz's NAT check asks the relays themselves (Nat.relaysDown): each says it
// is down once it no longer listens, so a NAT whose namespace and TUN are fine
// but whose TCP, UDP or DNS listener is gone is not ready.
import assert from 'node:assert/strict';
import { silentLogger } from '@wirecage/wg-engine';
import { newCounters } from '../src/nat/counters.js';
import { DnsForwarder } from '../src/nat/dns-forwarder.js';
import { FlowLimits } from '../src/nat/limits.js';
import { EgressPolicy } from '../src/nat/policy.js';
import { TcpRelay, type RelayContext } from '../src/nat/tcp-relay.js';
import { UdpRelay } from '../src/nat/udp-relay.js';
import { ForwardLab } from './forwards-lab.js';

describe('NAT relays say when they are down (readiness)', function () {
  this.timeout(30_000);
  let lab: ForwardLab;
  let ctx: RelayContext;

  before(async () => {
    lab = await ForwardLab.create();
    ctx = {
      netnsFd: lab.nat.fd,
      policy: new EgressPolicy({ serverPools: ['10.200.100.0/24', 'fd00:ab::/64'] }),
      limits: new FlowLimits(16, 4),
      counters: newCounters(),
      log: silentLogger,
    };
  });
  after(() => lab?.dispose());

  it('the TCP relay: up while it listens, down once closed', async () => {
    const tcp = await TcpRelay.listen(ctx);
    assert.equal(tcp.down(), null);
    await tcp.close();
    assert.match(tcp.down() ?? '', /TCP relay does not listen/);
  });

  it('the UDP relay: up while its sockets are open, down once closed', () => {
    const udp = UdpRelay.listen(ctx);
    assert.equal(udp.down(), null);
    udp.close();
    assert.match(udp.down() ?? '', /UDP relay does not listen/);
  });

  it('the DNS forwarder: up while it listens on UDP and TCP, down once closed', async () => {
    const dns = await DnsForwarder.start({
      netnsFd: lab.nat.fd,
      addresses: ['10.200.100.1'],
      upstreams: [{ address: lab.clientAddress, port: 53 }],
      log: silentLogger,
    });
    assert.equal(dns.down(), null);
    await dns.close();
    assert.match(dns.down() ?? '', /DNS forwarder does not listen/);
  });
});
