// ICMP errors to the peers, as the router between them and the internet
// would send them: the relays' host-side sockets read the errors about what
// they sent (IP_RECVERR), and the peer gets one about the datagram it sent,
// from a transparent raw socket per family in the NAT namespace (stage 2 is
// root in the user namespace that owns it: CAP_NET_RAW holds there, as for
// the ping relay's echo replies).
//
// Which source: an error the destination sent itself (port unreachable)
// comes from the destination, so the peer's kernel matches it to its socket
// like any other; one from anywhere else (a router on the way, or the
// server's own host when no neighbour answers) comes from the gateway, the
// peer's first hop: the addresses of the server's network are not shown.
import { closeSync } from 'node:fs';
import { icmpSend, icmpSocketInNetns, type NetnsError } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { parseCidr } from '@wirecage/wg-engine';
import type { NatCounters } from './counters.js';
import { buildIcmpError, errorForErrno, isRelayableError, quotedBytes, type QuotedPacket } from './icmp-error.js';

/** Like Linux's net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst: errors sent per second overall, and the burst. */
const ERRORS_PER_SECOND = 1000;
const BURST = 50;

export interface IcmpErrorSenderOptions {
  netnsFd: number;
  /** The gateway addresses (no prefix), one per family. */
  gateway4: string;
  gateway6: string;
  counters: NatCounters;
  log: Logger;
  /** The clock the rate limit runs on (ms); default Date.now. */
  now?: () => number;
}

/** What the host-side socket learnt (a SocketErrorEntry of @wirecage/netns) about a datagram the peer sent. */
export interface HostError {
  origin: string;
  type: number;
  code: number;
  info: number;
  offender: string | null;
}

export class IcmpErrorSender {
  private tokens = BURST;
  private readonly now: () => number;
  private refilled: number;

  private constructor(
    private readonly fds: { 4: number; 6: number },
    private readonly o: IcmpErrorSenderOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.refilled = this.now();
  }

  /** Null, after a warning, when the raw sockets cannot be opened: errors then stay unreported, as before. */
  static open(o: IcmpErrorSenderOptions): IcmpErrorSender | null {
    const fds: number[] = [];
    try {
      // No types accepted: these sockets only send.
      for (const family of [4, 6] as const)
        fds.push(icmpSocketInNetns(o.netnsFd, family, { raw: true, transparent: true, acceptTypes: [] }));
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      o.log.warn(`NAT: ICMP errors (unreachable, packet too big) are not passed on to peers: ${(err as Error).message}`);
      return null;
    }
    return new IcmpErrorSender({ 4: fds[0]!, 6: fds[1]! }, o);
  }

  /**
   * Passes on an ICMP error the host-side socket got about the peer's packet `quoted`:
   * destination unreachable, time exceeded, packet too big. False when it is none of those.
   */
  relay(quoted: QuotedPacket, e: HostError): boolean {
    const f = quoted.family;
    if (e.origin !== (f === 4 ? 'icmp' : 'icmp6') || !isRelayableError(f, e.type)) return false;
    const fromDestination = e.offender !== null && sameAddress(e.offender, quoted.destination);
    return this.send(quoted, e.type, e.code, e.info, fromDestination ? quoted.destination : this.gateway(f));
  }

  /** For a datagram the host could not send at all (no route: ENETUNREACH, EHOSTUNREACH): the unreachable a router sends. */
  unreachable(quoted: QuotedPacket, errno: string): boolean {
    const error = errorForErrno(quoted.family, errno);
    return error !== null && this.send(quoted, error.type, error.code, 0, this.gateway(quoted.family));
  }

  private send(quoted: QuotedPacket, type: number, code: number, mtu: number, from: string): boolean {
    if (!this.take()) {
      this.o.counters.icmpErrorsLimited++;
      return false;
    }
    const message = buildIcmpError(quoted.family, type, code, mtu, quotedBytes(quoted));
    try {
      if (icmpSend(this.fds[quoted.family], message, quoted.source, { source: from })) {
        this.o.counters.icmpErrors++;
        return true;
      }
    } catch (err) {
      this.o.log.debug(`NAT icmp error ${from} -> ${quoted.source}: ${(err as NetnsError).code ?? (err as Error).message}`);
    }
    return false;
  }

  /** A token bucket, so a peer sending to dead ends cannot make the NAT send errors without bound. */
  private take(): boolean {
    const now = this.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilled) * ERRORS_PER_SECOND) / 1000);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private gateway(family: 4 | 6): string {
    return family === 4 ? this.o.gateway4 : this.o.gateway6;
  }

  close(): void {
    closeSync(this.fds[4]);
    closeSync(this.fds[6]);
  }
}

function sameAddress(a: string, b: string): boolean {
  return parseCidr(a).address.equals(parseCidr(b).address);
}
