// Ping through the NAT. nftables marks the peers' echo requests to other
// hosts for local delivery in the NAT namespace (nft-rules.ts), where the
// kernel is told to answer no echo by itself (icmp_echo_ignore_all), so no
// peer ever gets a reply the destination did not send. A raw socket per
// family reads the requests; each (peer, destination, identifier) is a flow
// with an unprivileged ping socket in the host network, which sends the same
// payload and sequence to the destination. A reply to an outstanding
// sequence goes back to the peer from a transparent raw socket in the NAT
// namespace, with the destination's address as its source. Requests to the
// gateway addresses are answered here, as the kernel would have. The ping
// sockets are opened with IP_RECVERR: an error about a request (host
// unreachable, say) reaches the peer as an error about its own request
// (icmp-error-sender.ts), instead of a silent timeout.
import { closeSync, readFileSync } from 'node:fs';
import { icmpReceive, icmpSend, icmpSocketInNetns, recvSocketError, watchReadable, type NetnsError } from '@wirecage/netns';
import { parseCidr } from '@wirecage/wg-engine';
import {
  ICMP4_ECHO_REPLY,
  ICMP4_ECHO_REQUEST,
  ICMP6_ECHO_REPLY,
  ICMP6_ECHO_REQUEST,
  buildEcho,
  icmpInIpv4,
  parseEcho,
  type Echo,
} from './icmp-message.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type QuotedPacket } from './icmp-error.js';
import { runInNetns } from './netns-command.js';
import type { RelayContext } from './tcp-relay.js';
import { canonicalAddress } from './address.js';
import { admitFlow } from './admit.js';

/** A flow (peer, destination, identifier) is closed with its socket after this long without a request or reply. */
export const ICMP_IDLE_MS = 30_000;
/** Sequences awaiting a reply per flow; the oldest is forgotten beyond it (its late reply is dropped). */
const OUTSTANDING_LIMIT = 64;
/** Messages read per readable event before yielding to the event loop. */
const READ_BATCH = 256;
/** The TTL of replies from the gateway, as Linux sends its own. */
const GATEWAY_TTL = 64;

const REQUEST = { 4: ICMP4_ECHO_REQUEST, 6: ICMP6_ECHO_REQUEST } as const;
const ECHO_IGNORE_ALL = { 4: '/proc/sys/net/ipv4/icmp_echo_ignore_all', 6: '/proc/sys/net/ipv6/icmp/echo_ignore_all' } as const;
const REPLY = { 4: ICMP4_ECHO_REPLY, 6: ICMP6_ECHO_REPLY } as const;

export interface IcmpRelayOptions {
  /** The gateway addresses (no prefix): their pings are answered here. */
  gateways: string[];
  idleMs?: number;
  /** Where pings go out: this process's network namespace (null, the default), or the one an fd refers to. */
  hostNetnsFd?: number | null;
}

interface EchoFlow {
  key: string;
  family: 4 | 6;
  peer: string;
  destination: string;
  /** The peer's identifier; the host socket has its own, given by the kernel. */
  id: number;
  fd: number;
  watcher: { stop(): void };
  /** Sequences sent and not yet answered, oldest first. */
  outstanding: Set<number>;
  timer: NodeJS.Timeout;
}

interface Listener {
  family: 4 | 6;
  fd: number;
  watcher: { stop(): void } | null;
}

export class IcmpRelay {
  private readonly listeners: Listener[] = [];
  private readonly flows = new Map<string, EchoFlow>();
  private readonly buffer = Buffer.allocUnsafe(65_576);
  /** Errors are read apart from messages: a request being relayed is a view into `buffer`. An error quotes at most 1232 bytes. */
  private readonly errorBuffer = Buffer.allocUnsafe(2048);
  private readonly gateways: Buffer[];
  /** Families the host lets this process send pings from (see probePingSockets). */
  private readonly canPing = new Set<4 | 6>();

  private constructor(
    private readonly ctx: RelayContext,
    private readonly opts: IcmpRelayOptions,
  ) {
    this.gateways = opts.gateways.map((g) => parseCidr(g).address);
  }

  /**
   * Opens the raw sockets in the NAT namespace, then stops its kernel from
   * answering echo requests: from here on every reply comes from this relay.
   * Null, after a warning, when that cannot be done (a read-only /proc/sys in
   * a container, say): then echo requests must not be steered to the
   * namespace, and only its kernel answers, for the gateway addresses.
   */
  static async start(ctx: RelayContext, opts: IcmpRelayOptions): Promise<IcmpRelay | null> {
    const relay = new IcmpRelay(ctx, opts);
    try {
      for (const family of [4, 6] as const) {
        const fd = icmpSocketInNetns(ctx.netnsFd, family, { raw: true, transparent: true, acceptTypes: [REQUEST[family]] });
        relay.listeners.push({ family, fd, watcher: null });
      }
      await runInNetns(ctx.netnsFd, 'sh', ['-c', `echo 1 > ${ECHO_IGNORE_ALL[6]} && echo 1 > ${ECHO_IGNORE_ALL[4]}`]);
    } catch (err) {
      relay.close();
      // Half done (one family's switch written) would leave the gateway silent in that family.
      await runInNetns(ctx.netnsFd, 'sh', ['-c', `echo 0 > ${ECHO_IGNORE_ALL[6]}; echo 0 > ${ECHO_IGNORE_ALL[4]}`]).catch(() => {});
      ctx.log.warn(`NAT: pings through the NAT are off, only the gateway answers: ${(err as Error).message}`);
      return null;
    }
    relay.probePingSockets();
    for (const l of relay.listeners) {
      l.watcher = watchReadable(l.fd, (err) => {
        if (err) ctx.log.error(`NAT ICMP listener: ${err.message}`);
        else relay.drain(l);
      });
    }
    return relay;
  }

  /** Tracked flows. */
  get active(): number {
    return this.flows.size;
  }

  /**
   * Ping sockets need the server's group in net.ipv4.ping_group_range. Without
   * it pings to the internet are dropped (and counted), once said plainly.
   */
  private probePingSockets(): void {
    const refused: string[] = [];
    for (const family of [4, 6] as const) {
      try {
        closeSync(icmpSocketInNetns(this.opts.hostNetnsFd ?? null, family));
        this.canPing.add(family);
      } catch (err) {
        refused.push(`IPv${family}: ${(err as NetnsError).code ?? (err as Error).message}`);
      }
    }
    if (refused.length === 0) return;
    const gid = hostGid();
    this.ctx.log.warn(
      `NAT: pings to the internet are dropped (${refused.join(', ')}): this host does not let the server open ping sockets. ` +
        `Allow its group with \`sysctl -w net.ipv4.ping_group_range="${gid ?? 'GID'} ${gid ?? 'GID'}"\` (as root on the host), then restart; ` +
        `the gateway answers pings all the same.`,
    );
  }

  private drain(l: Listener): void {
    for (let i = 0; i < READ_BATCH; i++) {
      let m;
      try {
        m = icmpReceive(l.fd, this.buffer);
      } catch (err) {
        this.ctx.log.debug(`NAT ICMP: ${(err as Error).message}`);
        return;
      }
      if (m === null) return;
      const data = this.buffer.subarray(0, m.length);
      // IPv4 raw sockets include the IP header; the IPv6 kernel has checked the ICMPv6 checksum already.
      const icmp = l.family === 4 ? icmpInIpv4(data) : data;
      const echo = icmp && parseEcho(icmp);
      if (m.truncated || m.destination === null || !echo || echo.type !== REQUEST[l.family] || echo.code !== 0) {
        this.ctx.counters.icmpDropped++;
        continue;
      }
      this.request(l, m.source, m.destination, echo);
    }
  }

  private request(l: Listener, peer: string, destination: string, echo: Echo): void {
    if (this.isGateway(destination)) {
      this.replyToPeer(l, destination, peer, echo.id, echo.seq, echo.payload, GATEWAY_TTL);
      return;
    }
    const key = `${peer}|${destination}|${echo.id}`;
    const flow = this.flows.get(key) ?? this.startFlow(l.family, key, peer, destination, echo.id);
    if (!flow) return;
    flow.timer.refresh();
    const sent = this.sendRequest(flow, echo);
    if (!sent) {
      this.ctx.counters.icmpDropped++;
      return;
    }
    this.ctx.counters.icmpEchoRequests++;
    flow.outstanding.delete(echo.seq);
    flow.outstanding.add(echo.seq);
    if (flow.outstanding.size > OUTSTANDING_LIMIT) flow.outstanding.delete(flow.outstanding.values().next().value!);
  }

  /**
   * Sends the peer's request from the flow's ping socket. A send also fails with an error that came
   * in meanwhile (the socket's pending error, cleared by that failure): it is passed on and the send
   * tried once more. A send that fails for want of a route gets the peer an unreachable.
   */
  private sendRequest(flow: EchoFlow, echo: Echo): boolean {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return icmpSend(flow.fd, buildEcho(REQUEST[flow.family], 0, echo.seq, echo.payload, false), flow.destination);
      } catch (err) {
        if (attempt === 0 && this.drainErrors(flow) > 0) continue;
        const code = (err as NetnsError).code ?? (err as Error).message;
        this.ctx.log.debug(`NAT icmp ${flow.peer} -> ${flow.destination}: ${code}`);
        this.ctx.icmpErrors?.unreachable(this.quotedRequest(flow, echo.seq, echo.payload), code);
        return false;
      }
    }
    return false;
  }

  /** The peer's echo request as an error about it quotes it: the peer's identifier, and the payload (or its start). */
  private quotedRequest(flow: EchoFlow, seq: number, payload: Uint8Array): QuotedPacket {
    return {
      family: flow.family,
      source: flow.peer,
      destination: flow.destination,
      protocol: flow.family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
      transport: buildEcho(REQUEST[flow.family], flow.id, seq, payload, false),
    };
  }

  /**
   * Reads the errors queued on a flow's ping socket; each about a request still awaiting its reply
   * goes to the peer (and the request is no longer awaited). Returns how many were read.
   */
  private drainErrors(flow: EchoFlow): number {
    let n = 0;
    for (; n < READ_BATCH; n++) {
      let e;
      try {
        e = recvSocketError(flow.fd, this.errorBuffer);
      } catch (err) {
        this.ctx.log.debug(`NAT icmp ${flow.peer} -> ${flow.destination}: ${(err as Error).message}`);
        break;
      }
      if (e === null) break;
      // A ping socket's error quotes the request from its ICMP header on, with the host socket's identifier.
      const sent = parseEcho(this.errorBuffer.subarray(0, e.length));
      if (!sent || sent.type !== REQUEST[flow.family] || !flow.outstanding.delete(sent.seq)) {
        this.ctx.counters.icmpDropped++;
        continue;
      }
      this.ctx.log.debug(
        `NAT icmp ${flow.peer} -> ${flow.destination}: ${e.error} (ICMP type ${e.type} code ${e.code} from ${e.offender ?? 'the host'})`,
      );
      this.ctx.icmpErrors?.relay(this.quotedRequest(flow, sent.seq, sent.payload), e);
    }
    return n;
  }

  private startFlow(family: 4 | 6, key: string, peer: string, destination: string, id: number): EchoFlow | null {
    const ctx = this.ctx;
    const name = `${peer} -> ${destination}`;
    if (!admitFlow(ctx, 'icmp', name, peer, destination)) return null;
    if (!this.canPing.has(family)) {
      ctx.limits.release(peer);
      ctx.counters.icmpDropped++;
      return null;
    }
    let fd: number;
    try {
      fd = icmpSocketInNetns(this.opts.hostNetnsFd ?? null, family, { recvErr: true });
    } catch (err) {
      ctx.limits.release(peer);
      ctx.counters.icmpDropped++;
      ctx.log.warn(`NAT icmp ${name}: ${(err as Error).message}`);
      return null;
    }
    const idleMs = this.opts.idleMs ?? ICMP_IDLE_MS;
    const flow: EchoFlow = {
      key,
      family,
      peer,
      destination,
      id,
      fd,
      outstanding: new Set(),
      watcher: { stop() {} },
      timer: setTimeout(() => this.endFlow(flow), idleMs),
    };
    flow.watcher = watchReadable(fd, (err) => {
      if (err) ctx.log.debug(`NAT icmp ${name}: ${err.message}`);
      else this.drainFlow(flow);
    });
    this.flows.set(key, flow);
    ctx.counters.icmpFlows++;
    return flow;
  }

  /** Replies on a flow's ping socket: only the destination's echo replies to sequences the peer sent go back, and errors about them. */
  private drainFlow(flow: EchoFlow): void {
    // Errors first: reading them clears the socket's pending error, which would fail the reads below.
    this.drainErrors(flow);
    const l = this.listeners.find((x) => x.family === flow.family)!;
    for (let i = 0; i < READ_BATCH && this.flows.get(flow.key) === flow; i++) {
      let m;
      try {
        m = icmpReceive(flow.fd, this.buffer);
      } catch (err) {
        this.ctx.log.debug(`NAT icmp ${flow.peer} -> ${flow.destination}: ${(err as NetnsError).code ?? (err as Error).message}`);
        return;
      }
      if (m === null) return;
      const echo = parseEcho(this.buffer.subarray(0, m.length));
      if (m.truncated || !echo || echo.type !== REPLY[flow.family] || m.source !== flow.destination || !flow.outstanding.delete(echo.seq)) {
        this.ctx.counters.icmpDropped++;
        continue;
      }
      flow.timer.refresh();
      // One hop further, as a router would count it.
      const ttl = m.ttl !== null && m.ttl > 1 ? m.ttl - 1 : 1;
      if (this.replyToPeer(l, flow.destination, flow.peer, flow.id, echo.seq, echo.payload, ttl)) this.ctx.counters.icmpEchoReplies++;
    }
  }

  /** Sends an echo reply into the NAT namespace, from `from` (not an address of its own: the socket is transparent) to the peer. */
  private replyToPeer(l: Listener, from: string, peer: string, id: number, seq: number, payload: Buffer, ttl: number): boolean {
    const reply = buildEcho(REPLY[l.family], id, seq, payload, l.family === 4);
    try {
      if (icmpSend(l.fd, reply, peer, { source: from, ttl })) return true;
    } catch (err) {
      this.ctx.log.debug(`NAT icmp reply ${from} -> ${peer}: ${(err as NetnsError).code ?? (err as Error).message}`);
    }
    this.ctx.counters.icmpDropped++;
    return false;
  }

  /** The gateway addresses, and the TUN's own link-local addresses (only those are delivered here unmarked). */
  private isGateway(address: string): boolean {
    const a = parseCidr(address).address;
    if (a.length === 16 && a[0] === 0xfe && (a[1]! & 0xc0) === 0x80) return true;
    return this.gateways.some((g) => g.equals(a));
  }

  private endFlow(flow: EchoFlow): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.flows.delete(flow.key);
    clearTimeout(flow.timer);
    flow.watcher.stop();
    closeSync(flow.fd);
    this.ctx.limits.release(flow.peer);
  }

  /** Ends every echo flow from these (canonical) peer addresses; returns how many. */
  closeFrom(sources: ReadonlySet<string>): number {
    let n = 0;
    for (const f of [...this.flows.values()]) {
      if (!sources.has(canonicalAddress(f.peer))) continue;
      this.endFlow(f);
      n++;
    }
    return n;
  }

  close(): void {
    for (const l of this.listeners.splice(0)) {
      l.watcher?.stop();
      closeSync(l.fd);
    }
    for (const f of [...this.flows.values()]) this.endFlow(f);
  }
}

/** The host's group id of this process (stage 2 is gid 0 in its user namespace): the first line of gid_map. */
function hostGid(): number | null {
  try {
    const [inside, outside] = readFileSync('/proc/self/gid_map', 'utf8').trim().split(/\s+/).map(Number);
    return inside === 0 && Number.isInteger(outside) ? outside! : null;
  } catch {
    return null;
  }
}
