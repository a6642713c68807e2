// The rootless NAT: a network namespace of the server's own whose kernel
// terminates the peers' TCP and UDP, and relays that carry each flow out
// through the server's host network (see tcp-relay.ts, udp-relay.ts), with
// the DNS forwarder the peers are told to use on the gateway addresses, and
// the ICMP errors the host sockets get passed back (icmp-error-sender.ts).
import type { Device, Logger } from '@wirecage/wg-engine';
import { newCounters } from './counters.js';
import { DnsForwarder } from './dns-forwarder.js';
import { hostDnsUpstreams } from './dns-upstream.js';
import { IcmpErrorSender } from './icmp-error-sender.js';
import { IcmpRelay } from './icmp-relay.js';
import { HostAddressWatcher } from './host-addresses.js';
import { FlowLimits } from './limits.js';
import { NatNamespace } from './namespace.js';
import { EgressPolicy } from './policy.js';
import { TcpRelay, type RelayContext } from './tcp-relay.js';
import { UdpRelay } from './udp-relay.js';
import { canonicalAddress } from './address.js';
import type { Nat, NatStartOptions } from './types.js';
import { CleanupStack } from '@wirecage/netns';

export async function startUserspaceNat(device: Device, o: NatStartOptions, log: Logger): Promise<Nat> {
  const stack = new CleanupStack();
  const opened = <T>(thing: T, close: (t: T) => void | Promise<void>): T => (stack.push(() => close(thing)), thing);
  try {
    const ns = opened(
      await NatNamespace.create({ mtu: o.mtu, gateway4: o.gateway4, gateway6: o.gateway6, offload: o.offload, queues: o.queues }),
      (n) => n.close(),
    );
    if (ns.forwardingNotOff)
      log.warn(
        `cannot switch forwarding off in the NAT namespace (its forward chain drops everything all the same): ${ns.forwardingNotOff}`,
      );
    const counters = newCounters();
    const limits = new FlowLimits(o.maxFlows, o.maxFlowsPerPeer);
    const [gateway4, gateway6] = [o.gateway4, o.gateway6].map((g) => g.split('/')[0]!) as [string, string];
    const policy = new EgressPolicy({ allowLan: o.allowLan, allowDest: o.allowDest, serverPools: o.serverPools });
    // The relays connect from the host: its own addresses are refused (stage 2 runs in the host's network namespace).
    opened(
      HostAddressWatcher.start((addresses) => policy.setHostAddresses(addresses), log),
      (h) => h.close(),
    );
    const icmpErrors = opened(IcmpErrorSender.open({ netnsFd: ns.netnsFd, gateway4, gateway6, counters, log }), (e) => e?.close());
    const ctx: RelayContext = { netnsFd: ns.netnsFd, policy, limits, counters, log, icmpErrors };
    const tcp = opened(await TcpRelay.listen(ctx), (t) => t.close());
    const udp = opened(UdpRelay.listen(ctx), (u) => u.close());
    // Before steer(): the kernel must stop answering echo requests before any is steered to it.
    const icmp = opened(await IcmpRelay.start(ctx, { gateways: [gateway4, gateway6] }), (i) => i?.close());
    await ns.steer({ tcp: tcp.port, udp: udp.port, echo: icmp !== null });
    const upstreams = o.dnsUpstream ?? hostDnsUpstreams();
    const dns = opened(await DnsForwarder.start({ netnsFd: ns.netnsFd, addresses: [gateway4, gateway6], upstreams, log }), async (d) => {
      log.info(d.summary());
      await d.close();
    });
    return {
      mode: 'userspace',
      netnsFd: ns.netnsFd,
      tun: ns.tun,
      counters,
      activeFlows: () => limits.active,
      // Both are consulted when a flow is admitted (admit.ts), never again for a flow already open.
      reconfigure(n) {
        policy.reconfigure(n);
        limits.setLimits(n.maxFlows, n.maxFlowsPerPeer);
        return Promise.resolve({
          applied: { allowLan: n.allowLan, allowDest: [...n.allowDest], maxFlows: n.maxFlows, maxFlowsPerPeer: n.maxFlowsPerPeer },
          notes: [],
        });
      },
      relaysDown: () => tcp.down() ?? udp.down() ?? dns.down(),
      closeFlowsFrom(addresses) {
        const sources = new Set(addresses.map(canonicalAddress));
        return Promise.resolve(tcp.closeFrom(sources) + udp.closeFrom(sources) + (icmp?.closeFrom(sources) ?? 0));
      },
      async close() {
        device.io.writeTun = () => {};
        await stack.unwind();
      },
    };
  } catch (err) {
    await stack.unwind().catch(() => {});
    throw err;
  }
}
