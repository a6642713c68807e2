import { closeSync } from 'node:fs';
import { parseCidr } from './cidr.js';
import { withContext } from './errors.js';
import { native } from './native.js';

export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFA_F_NODAD = 0x2;
export const RT_TABLE_MAIN = 254;

export interface Link {
  index: number;
  name: string;
  /** IFF_* flags as the kernel reports them. */
  flags: number;
  mtu: number;
  up: boolean;
  /** rtnetlink link kind ('dummy', 'veth', 'tun', ...); null for lo and kind-less devices. */
  kind: string | null;
}

export interface Address {
  /** ifindex of the link holding the address. */
  link: number;
  family: 4 | 6;
  address: string;
  prefixLen: number;
  /** IFA_F_* flags (e.g. IFA_F_NODAD, IFA_F_PERMANENT). */
  flags: number;
  scope: number;
}

export interface Route {
  family: 4 | 6;
  /** Destination as CIDR, e.g. '0.0.0.0/0' or 'fd00::/64'. */
  to: string;
  /** ifindex of the output device, if any. */
  dev: number | null;
  via: string | null;
  source: string | null;
  metric: number | null;
  table: number;
  /** RTN_* (1 unicast, 2 local, 3 broadcast, ...). */
  type: number;
  scope: number;
  protocol: number;
}

export interface RouteSpec {
  /** Destination CIDR; '0.0.0.0/0' / '::/0' for the default routes. */
  to: string;
  /** Output device, by name or ifindex. */
  dev?: string | number;
  /** Gateway address. */
  via?: string;
  /** Preferred source address. */
  source?: string;
  metric?: number;
  table?: number;
}

type LinkRef = string | number;

/**
 * A NETLINK_ROUTE socket bound to one network namespace. Calls are synchronous
 * (the kernel answers at once) and run on the calling thread without moving it.
 */
export class Rtnl {
  private constructor(private fd: number) {}

  /** Opens a socket in the namespace `nsFd` refers to, or in this thread's namespace when omitted. */
  static open(nsFd?: number): Rtnl {
    return new Rtnl(native.rtnlOpen(nsFd));
  }

  links(): Link[] {
    return native.linkList(this.socket()).map((l) => ({ ...l, up: (l.flags & IFF_UP) !== 0 }));
  }

  /** The link with that name or index; throws if the namespace has none. */
  link(ref: LinkRef): Link {
    const found = this.links().find((l) => (typeof ref === 'number' ? l.index === ref : l.name === ref));
    if (!found) throw new Error(`no network interface ${JSON.stringify(ref)} in this namespace`);
    return found;
  }

  setUp(ref: LinkRef, up = true): void {
    const index = this.index(ref);
    withContext(`setting ${ref} ${up ? 'up' : 'down'}`, () => native.linkSet(this.socket(), index, { up }));
  }

  /**
   * Stops the kernel from giving the link an IPv6 link-local address (and so an fe80::/64 route)
   * when it comes up: a cage without IPv6 addresses then has no IPv6 route at all. Call before setUp.
   */
  disableIpv6LinkLocal(ref: LinkRef): void {
    const index = this.index(ref);
    withContext(`turning off IPv6 link-local addresses on ${ref}`, () => native.linkSet(this.socket(), index, { noLinkLocal: true }));
  }

  setMtu(ref: LinkRef, mtu: number): void {
    const index = this.index(ref);
    withContext(`setting the MTU of ${ref} to ${mtu}`, () => native.linkSet(this.socket(), index, { mtu }));
  }

  /** Adds "addr/prefix" to the link; IPv6 addresses skip duplicate address detection. */
  addAddress(ref: LinkRef, cidr: string): void {
    const { address, prefixLen } = parseCidr(cidr);
    const index = this.index(ref);
    withContext(`adding ${cidr} to ${ref}`, () => native.addrAdd(this.socket(), index, address, prefixLen));
  }

  addresses(ref?: LinkRef): Address[] {
    const only = ref === undefined ? undefined : this.index(ref);
    return native
      .addrList(this.socket())
      .filter((a) => only === undefined || a.index === only)
      .map(({ index, ...rest }) => ({ link: index, ...rest }));
  }

  addRoute(spec: RouteSpec): void {
    const dst = parseCidr(spec.to);
    const oif = spec.dev === undefined ? undefined : this.index(spec.dev);
    const what = `adding route ${spec.to}${spec.via ? ` via ${spec.via}` : ''}${spec.dev !== undefined ? ` dev ${spec.dev}` : ''}`;
    withContext(what, () =>
      native.routeAdd(this.socket(), {
        dst: dst.address,
        prefixLen: dst.prefixLen,
        oif,
        gateway: spec.via,
        source: spec.source,
        metric: spec.metric,
        table: spec.table,
      }),
    );
  }

  /** Routes of one table (the main table unless told), or of all tables with 'all'. */
  routes(table: number | 'all' = RT_TABLE_MAIN): Route[] {
    return native
      .routeList(this.socket())
      .filter((r) => table === 'all' || r.table === table)
      .map((r) => ({
        family: r.family,
        to: `${r.dst}/${r.prefixLen}`,
        dev: r.oif,
        via: r.gateway,
        source: r.source,
        metric: r.metric,
        table: r.table,
        type: r.type,
        scope: r.scope,
        protocol: r.protocol,
      }));
  }

  deleteLink(ref: LinkRef): void {
    const index = this.index(ref);
    withContext(`deleting link ${ref}`, () => native.linkDelete(this.socket(), index));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private index(ref: LinkRef): number {
    return typeof ref === 'number' ? ref : this.link(ref).index;
  }

  private socket(): number {
    if (this.fd < 0) throw new Error('rtnetlink socket already closed');
    return this.fd;
  }
}
