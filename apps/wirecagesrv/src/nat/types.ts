import type { Tun } from '@wirecage/tun';
import type { NatCounters } from './counters.js';
import type { DnsUpstream } from './dns-upstream.js';

export type NatMode = 'userspace' | 'kernel';

/** What `up` asks of the NAT (--nat, --allow-lan, --allow-dest, --max-flows, --max-flows-per-peer). */
export interface NatOptions {
  mode: NatMode;
  allowLan: boolean;
  allowDest: string[];
  maxFlows: number;
  maxFlowsPerPeer: number;
  /** Resolvers the DNS forwarder on the gateways relays to (--dns-upstream); default the host's /etc/resolv.conf. */
  dnsUpstream?: DnsUpstream[];
}

export interface NatStartOptions extends NatOptions {
  mtu: number;
  /** The server's tunnel addresses with the pools' prefixes: "10.200.100.1/24", "fd00::1/64". */
  gateway4: string;
  gateway6: string;
  /** The pools, refused as destinations: peers reach each other only through the tunnel. */
  serverPools: string[];
  /** Open the TUN with offloads (TSO/USO super-packets); only for the sharded data plane. */
  offload?: boolean;
  /** TUN queues (IFF_MULTI_QUEUE): one per data-plane shard. Default 1. */
  queues?: number;
}

/** What a reload may change in a running NAT. */
export type NatLiveOptions = Pick<NatOptions, 'allowLan' | 'allowDest' | 'maxFlows' | 'maxFlowsPerPeer'>;

/** A reconfigured NAT: the options now in force (a mode may keep some as they were), and why any were kept. */
export interface NatReconfigured {
  applied: NatLiveOptions;
  notes: string[];
}

/** A running NAT: where the peers' decrypted packets leave the tunnel for the world. */
export interface Nat {
  readonly mode: NatMode;
  /** The namespace whose stack terminates the peers' flows (port forwards connect into it). */
  readonly netnsFd: number;
  /** The TUN the engine's decrypted packets go to (the server attaches the device to it). */
  readonly tun: Tun;
  readonly counters: NatCounters;
  /** Flows open now (TCP connections and UDP 5-tuples). */
  activeFlows(): number;
  /**
   * Cuts every flow from these peer addresses (a removed peer's): its
   * addresses go back to the pool, and the next peer to get them must not
   * receive what the old one's connections still bring. Returns how many.
   */
  closeFlowsFrom(addresses: readonly string[]): Promise<number>;
  /**
   * A reload's egress policy and flow limits, for new flows only: flows already open carry on.
   * Rejects, having changed nothing, when it cannot apply them.
   */
  reconfigure(o: NatLiveOptions): Promise<NatReconfigured>;
  /** Null while its relays and DNS forwarder listen; else what is wrong (/readyz). */
  relaysDown(): string | null;
  /** Cuts every flow and removes the namespace and its TUN. */
  close(): Promise<void>;
}
