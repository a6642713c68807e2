// The addresses the host holds, on every interface, kept current: the egress
// policy refuses them (a peer's flow relayed from the host to itself reaches
// services that trust local connections, and slips past firewalls that filter
// by interface or source). They are read over netlink (@wirecage/netns) at
// start and again whenever the kernel reports a change of links, addresses or
// routes (NetlinkMonitor, subscribed before the first read, so no change can
// fall between the two); only if that socket fails are they re-read every few
// seconds instead, which leaves a new address open for at most that long.
import { NetlinkMonitor, Rtnl } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { canonicalAddress } from './address.js';

export const HOST_ADDRESS_POLL_MS = 2_000;

/** Every address on every interface of this process's network namespace, canonical and sorted. */
export function readHostAddresses(): string[] {
  const nl = Rtnl.open();
  try {
    return [...new Set(nl.addresses().map((a) => canonicalAddress(a.address)))].sort();
  } finally {
    nl.close();
  }
}

export class HostAddressWatcher {
  private monitor: NetlinkMonitor | null = null;
  private poll: NodeJS.Timeout | null = null;
  private current: string[] = [];
  private closed = false;

  private constructor(
    private readonly onChange: (addresses: readonly string[]) => void,
    private readonly log: Logger,
  ) {}

  /** Reads the addresses (onChange runs once before this returns) and watches for changes. */
  static start(onChange: (addresses: readonly string[]) => void, log: Logger): HostAddressWatcher {
    const w = new HostAddressWatcher(onChange, log);
    w.watch();
    w.refresh();
    return w;
  }

  get addresses(): readonly string[] {
    return this.current;
  }

  private refresh(): void {
    if (this.closed) return;
    let next: string[];
    try {
      next = readHostAddresses();
    } catch (err) {
      this.log.warn(`cannot read the host's addresses: ${(err as Error).message}`);
      return;
    }
    if (next.join() === this.current.join()) return;
    this.current = next;
    this.onChange(next);
  }

  private watch(): void {
    const fallBack = (why: string) => {
      if (this.closed || this.poll) return;
      this.monitor = null;
      this.log.warn(`cannot watch the host's addresses (${why}): re-reading them every ${HOST_ADDRESS_POLL_MS / 1000} s instead`);
      this.poll = setInterval(() => this.refresh(), HOST_ADDRESS_POLL_MS);
      this.poll.unref();
    };
    try {
      // Any notification reads them all again: a dump costs less than telling address ones apart.
      this.monitor = NetlinkMonitor.open(() => this.refresh(), { onError: (err) => fallBack(err.message) });
    } catch (err) {
      fallBack((err as Error).message);
    }
  }

  close(): void {
    this.closed = true;
    if (this.poll) clearInterval(this.poll);
    this.monitor?.close();
    this.monitor = null;
  }
}
