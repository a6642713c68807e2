// The NAT's network namespace: made by stage 2 (root in its user namespace),
// held by an fd, never entered by a thread of ours. It holds the TUN that
// carries the peers' decrypted packets, with the gateway addresses on it, so
// the kernel's TCP/IP stack terminates the peers' flows there.
import { closeSync } from 'node:fs';
import { createNetns, Rtnl } from '@wirecage/netns';
import { Tun } from '@wirecage/tun';
import { runInNetns } from './netns-command.js';
import { natRuleset, policyRouting } from './nft-rules.js';

export const NAT_TUN_NAME = 'wcs0';
/** Forwarding off in the namespace (a new one inherits IPv4's from the host's initial namespace). */
const FORWARDING_OFF = 'echo 0 > /proc/sys/net/ipv4/ip_forward && echo 0 > /proc/sys/net/ipv6/conf/all/forwarding';

export interface NatNamespaceOptions {
  mtu: number;
  /** TUN offloads (virtio_net_hdr): only when the sharded data plane reads it. */
  offload?: boolean;
  /** TUN queues: one per data-plane shard. Default 1. */
  queues?: number;
  /** Gateway addresses with the pool's prefix: "10.200.100.1/24", "fd00::1/64". */
  gateway4: string;
  gateway6: string;
}

export class NatNamespace {
  private constructor(
    readonly netnsFd: number,
    readonly tun: Tun,
    private readonly gateways: { v4: string; v6: string },
    /** Why forwarding could not be switched off (a read-only /proc/sys); null when it is off. The forward chain drops all the same. */
    readonly forwardingNotOff: string | null,
  ) {}

  /** Creates the namespace, its TUN and addresses, and the policy routing that tproxy needs. */
  static async create(o: NatNamespaceOptions): Promise<NatNamespace> {
    const netnsFd = createNetns();
    let tun: Tun | undefined;
    try {
      tun = Tun.open({ name: NAT_TUN_NAME, netnsFd, mtu: o.mtu, offload: o.offload ?? false, queues: o.queues ?? 1 });
      const nl = Rtnl.open(netnsFd);
      try {
        nl.setUp('lo');
        nl.addAddress(tun.name, o.gateway4);
        nl.addAddress(tun.name, o.gateway6);
        nl.setUp(tun.name);
      } finally {
        nl.close();
      }
      await runInNetns(netnsFd, 'ip', ['-4', '-batch', '/dev/stdin'], policyRouting(4));
      await runInNetns(netnsFd, 'ip', ['-6', '-batch', '/dev/stdin'], policyRouting(6));
      const forwarding = await runInNetns(netnsFd, 'sh', ['-c', FORWARDING_OFF]).then(
        () => null,
        (err: Error) => err.message,
      );
      return new NatNamespace(netnsFd, tun, { v4: o.gateway4.split('/')[0]!, v6: o.gateway6.split('/')[0]! }, forwarding);
    } catch (err) {
      tun?.close();
      closeSync(netnsFd);
      throw new Error(`cannot set up the NAT namespace: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Installs the nftables table once the transparent listeners have their ports. */
  async steer(ports: { tcp: number; udp: number; echo?: boolean }): Promise<void> {
    const rules = natRuleset({
      tunName: this.tun.name,
      gateway4: this.gateways.v4,
      gateway6: this.gateways.v6,
      tcpPort: ports.tcp,
      udpPort: ports.udp,
      steerEcho: ports.echo,
    });
    await runInNetns(this.netnsFd, 'nft', ['-f', '/dev/stdin'], rules);
  }

  close(): void {
    this.tun.close();
    closeSync(this.netnsFd);
  }
}
