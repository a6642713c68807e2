// The rootless NAT: a network namespace of the server's own whose kernel
// terminates the peers' TCP and UDP, and relays that carry each flow out
// through the server's host network (see tcp-relay.ts, udp-relay.ts), with
// the DNS forwarder the peers are told to use on the gateway addresses, and
// the ICMP errors the host sockets get passed back (icmp-error-sender.ts).
import type { Device, Logger } from '@wirecage/wg-engine';
import { newCounters, type NatCounters } from './counters.js';
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

export async function startUserspaceNat(device: Device, o: NatStartOptions, log: Logger): Promise<Nat> {
  const ns = await NatNamespace.create({ mtu: o.mtu, gateway4: o.gateway4, gateway6: o.gateway6, offload: o.offload });
  if (ns.forwardingNotOff) log.warn(`cannot switch forwarding off in the NAT namespace (its forward chain drops everything all the same): ${ns.forwardingNotOff}`);
  const counters = newCounters();
  const limits = new FlowLimits(o.maxFlows, o.maxFlowsPerPeer);
  const [gateway4, gateway6] = [o.gateway4, o.gateway6].map((g) => g.split('/')[0]!) as [string, string];
  const icmpErrors = IcmpErrorSender.open({ netnsFd: ns.netnsFd, gateway4, gateway6, counters, log });
  const policy = new EgressPolicy({ allowLan: o.allowLan, allowDest: o.allowDest, serverPools: o.serverPools });
  // The relays connect from the host: its own addresses are refused (stage 2 runs in the host's network namespace).
  const hosts = HostAddressWatcher.start((addresses) => policy.setHostAddresses(addresses), log);
  const ctx: RelayContext = {
    netnsFd: ns.netnsFd,
    policy,
    limits,
    counters,
    log,
    icmpErrors,
  };
  let tcp: TcpRelay | undefined;
  let udp: UdpRelay | undefined;
  let icmp: IcmpRelay | null = null;
  let dns: DnsForwarder | undefined;
  try {
    tcp = await TcpRelay.listen(ctx);
    udp = UdpRelay.listen(ctx);
    // Before steer(): the kernel must stop answering echo requests before any is steered to it.
    icmp = await IcmpRelay.start(ctx, { gateways: [gateway4, gateway6] });
    await ns.steer({ tcp: tcp.port, udp: udp.port, echo: icmp !== null });
    dns = await DnsForwarder.start({ netnsFd: ns.netnsFd, addresses: [gateway4, gateway6], upstreams: o.dnsUpstream ?? hostDnsUpstreams(), log });
  } catch (err) {
    icmp?.close();
    udp?.close();
    await tcp?.close();
    icmpErrors?.close();
    hosts.close();
    ns.close();
    throw err;
  }
  const [t, u, d] = [tcp, udp, dns];
  const i = icmp;
  return {
    mode: 'userspace',
    netnsFd: ns.netnsFd,
    tun: ns.tun,
    counters,
    activeFlows: () => limits.active,
    async closeFlowsFrom(addresses) {
      const sources = new Set(addresses.map(canonicalAddress));
      return t.closeFrom(sources) + u.closeFrom(sources) + (i?.closeFrom(sources) ?? 0);
    },
    async close() {
      device.io.writeTun = () => {};
      log.info(d.summary());
      await d.close();
      i?.close();
      u.close();
      await t.close();
      icmpErrors?.close();
      hosts.close();
      ns.close();
    },
  };
}
