// UDP through the NAT. tproxy steers every datagram from the tunnel to one
// transparent socket per family in the NAT namespace, which reads it with its
// original destination (IP_ORIGDSTADDR). Datagrams are tracked per 5-tuple:
// each flow has a socket in the host network connected to the destination,
// and a transparent socket in the NAT namespace bound to the destination's
// address and port, from which the replies go back, so the peer sees them come
// from where it sent. A flow ends after its idle timeout and both sockets are
// closed (nothing is left behind per query).
//
// The host socket is ours, not Node's, opened with IP_RECVERR: the ICMP
// errors about what it sent (port or host unreachable, packet too big) are
// read from its error queue and passed on to the peer about the datagram the
// peer sent (icmp-error-sender.ts), as a router would. Node's dgram cannot
// drain an error queue: its socket would poll readable forever.
import dgram from 'node:dgram';
import { closeSync, fstatSync } from 'node:fs';
import {
  bindSocket,
  connectSocket,
  recvSocketError,
  recvWithOrigDst,
  sendOnSocket,
  socketAddress,
  socketInNetns,
  watchReadable,
  type NetnsError,
} from '@wirecage/netns';
import { quotedUdp, type QuotedPacket } from './icmp-error.js';
import type { RelayContext } from './tcp-relay.js';
import { canonicalAddress } from './address.js';
import { admitFlow } from './admit.js';
import { formatHostPort } from '@wirecage/wg-engine/config';

/** Idle time after which a flow is forgotten. Refreshed by traffic either way. */
export const UDP_IDLE_MS = 60_000;
/** DNS is one query and one answer: its flows go sooner, so a resolver's many source ports do not pile up. */
export const DNS_IDLE_MS = 10_000;
/** Datagrams read per readable event before yielding to the event loop. */
const READ_BATCH = 256;

export interface UdpRelayOptions {
  idleMs?: number;
  dnsIdleMs?: number;
}

interface Flow {
  key: string;
  name: string;
  source: string;
  sourcePort: number;
  dest: string;
  destPort: number;
  family: 4 | 6;
  /** The connected socket in the host network (an fd of ours) and its readability watcher. */
  host: number;
  watcher: { stop(): void };
  reply: dgram.Socket;
  timer: NodeJS.Timeout;
  idleMs: number;
}

const where = (host: string, port: number) => formatHostPort({ host, port });

export class UdpRelay {
  /** The port of the transparent sockets (both families). */
  port = 0;
  private readonly listeners: { fd: number; watcher: { stop(): void } }[] = [];
  private readonly flows = new Map<string, Flow>();
  private readonly buffer = Buffer.allocUnsafe(65_535);

  private constructor(
    private readonly ctx: RelayContext,
    private readonly opts: UdpRelayOptions,
  ) {}

  static listen(ctx: RelayContext, opts: UdpRelayOptions = {}): UdpRelay {
    const relay = new UdpRelay(ctx, opts);
    try {
      for (const family of [4, 6] as const) relay.listenFamily(family);
    } catch (err) {
      relay.close();
      throw new Error(`the NAT cannot listen for UDP: ${(err as Error).message}`, { cause: err });
    }
    return relay;
  }

  private listenFamily(family: 4 | 6): void {
    const fd = socketInNetns(this.ctx.netnsFd, family, 'udp', { transparent: true, reuseAddr: true, origDstAddr: true });
    try {
      bindSocket(fd, family === 4 ? '0.0.0.0' : '::', this.port);
      this.port = socketAddress(fd).port;
      const watcher = watchReadable(fd, (err) => {
        if (err) this.ctx.log.error(`NAT UDP listener: ${err.message}`);
        else this.drain(fd, family);
      });
      this.listeners.push({ fd, watcher });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Tracked flows. */
  get active(): number {
    return this.flows.size;
  }

  private drain(fd: number, family: 4 | 6): void {
    for (let i = 0; i < READ_BATCH; i++) {
      let d;
      try {
        d = recvWithOrigDst(fd, this.buffer);
      } catch (err) {
        this.ctx.log.debug(`NAT UDP: ${(err as Error).message}`);
        return;
      }
      if (d === null) return;
      if (d.truncated || d.destination === null || d.destinationPort === null) {
        this.ctx.counters.udpDropped++;
        continue;
      }
      // Copied: the read buffer is reused, and a send completes later.
      this.datagram(family, d.source, d.sourcePort, d.destination, d.destinationPort, Buffer.from(this.buffer.subarray(0, d.length)));
    }
  }

  private datagram(family: 4 | 6, source: string, sourcePort: number, dest: string, destPort: number, data: Buffer): void {
    const key = `${source}|${sourcePort}|${dest}|${destPort}`;
    let flow = this.flows.get(key);
    if (!flow) {
      flow = this.startFlow(key, family, source, sourcePort, dest, destPort, data) ?? undefined;
      if (!flow) return;
    }
    this.touch(flow);
    this.sendOut(flow, data);
  }

  /**
   * Sends on the host socket. A send also fails with an ICMP error that came in meanwhile (the
   * socket's pending error, which the failure clears): that error is passed on and the send tried
   * once more. A send that fails for want of a route gets the peer an unreachable.
   */
  private sendOut(flow: Flow, data: Buffer): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (!sendOnSocket(flow.host, data)) this.ctx.counters.udpDropped++;
        return;
      } catch (err) {
        if (attempt === 0 && this.drainErrors(flow) > 0) continue;
        const code = (err as NetnsError).code ?? (err as Error).message;
        this.ctx.log.debug(`NAT udp ${flow.name}: ${code}`);
        this.ctx.counters.udpDropped++;
        this.ctx.icmpErrors?.unreachable(quotedUdp(flow.family, flow.source, flow.sourcePort, flow.dest, flow.destPort, data), code);
        return;
      }
    }
  }

  /** `first` is the datagram that opens the flow, quoted in an unreachable when no route leads to `dest`. */
  private startFlow(
    key: string,
    family: 4 | 6,
    source: string,
    sourcePort: number,
    dest: string,
    destPort: number,
    first: Buffer,
  ): Flow | null {
    const ctx = this.ctx;
    const name = `${where(source, sourcePort)} -> ${where(dest, destPort)}`;
    if (!admitFlow(this.ctx, 'udp', name, source, dest)) return null;
    const sockets = this.openSockets(name, family, dest, destPort, () => quotedUdp(family, source, sourcePort, dest, destPort, first));
    if (!sockets) {
      ctx.limits.release(source);
      ctx.counters.udpDropped++;
      return null;
    }
    const { reply, host } = sockets;
    ctx.counters.udpFlows++;
    const idleMs = destPort === 53 ? (this.opts.dnsIdleMs ?? DNS_IDLE_MS) : (this.opts.idleMs ?? UDP_IDLE_MS);
    const flow: Flow = {
      key,
      name,
      source,
      sourcePort,
      dest,
      destPort,
      family,
      host,
      watcher: { stop() {} },
      reply,
      idleMs,
      timer: setTimeout(() => this.expire(flow), idleMs),
    };
    this.flows.set(key, flow);
    flow.watcher = watchReadable(host, (err) => {
      if (err) ctx.log.debug(`NAT udp ${name}: ${err.message}`);
      else this.drainHost(flow);
    });
    reply.on('error', (err: NodeJS.ErrnoException) => ctx.log.debug(`NAT udp ${name} (reply): ${err.code ?? err.message}`));
    return flow;
  }

  /**
   * The flow's two sockets: the reply socket in the NAT namespace that answers as `dest`, and the host
   * socket connected to `dest`. Null (nothing left open) when either fails; with no route to `dest`
   * the peer gets the unreachable a router would send, quoting `quoted()`.
   */
  private openSockets(
    name: string,
    family: 4 | 6,
    dest: string,
    destPort: number,
    quoted: () => QuotedPacket,
  ): { reply: dgram.Socket; host: number } | null {
    const ctx = this.ctx;
    let reply: dgram.Socket;
    let host: number;
    try {
      reply = this.replySocket(family, dest, destPort);
    } catch (err) {
      ctx.log.warn(`NAT udp ${name}: ${(err as Error).message}`);
      return null;
    }
    try {
      host = socketInNetns(null, family, 'udp', { recvErr: true });
    } catch (err) {
      reply.close();
      ctx.log.warn(`NAT udp ${name}: ${(err as Error).message}`);
      return null;
    }
    try {
      connectSocket(host, dest, destPort);
      return { reply, host };
    } catch (err) {
      // No route from the host (an IPv6 destination on a server without IPv6, say): what a router answers.
      const code = (err as NetnsError).code ?? (err as Error).message;
      ctx.log.debug(`NAT udp ${name}: ${code}`);
      closeSync(host);
      reply.close();
      ctx.icmpErrors?.unreachable(quoted(), code);
      return null;
    }
  }

  /** The host socket is readable: errors first (reading them clears the socket's pending error), then the replies. */
  private drainHost(flow: Flow): void {
    this.drainErrors(flow);
    for (let i = 0; i < READ_BATCH && this.flows.get(flow.key) === flow; i++) {
      let d;
      try {
        d = recvWithOrigDst(flow.host, this.buffer);
      } catch (err) {
        // An error that arrived since drainErrors(); the next readable event reads it from the queue.
        this.ctx.log.debug(`NAT udp ${flow.name}: ${(err as NetnsError).code ?? (err as Error).message}`);
        return;
      }
      if (d === null) return;
      if (d.truncated) {
        this.ctx.counters.udpDropped++;
        continue;
      }
      this.touch(flow);
      // Copied: the read buffer is reused, and a send completes later.
      flow.reply.send(Buffer.from(this.buffer.subarray(0, d.length)), flow.sourcePort, flow.source);
    }
  }

  /** Passes on every error queued on the host socket to the peer; returns how many were read. */
  private drainErrors(flow: Flow): number {
    let n = 0;
    for (; n < READ_BATCH; n++) {
      let e;
      try {
        e = recvSocketError(flow.host, this.buffer);
      } catch (err) {
        this.ctx.log.debug(`NAT udp ${flow.name}: ${(err as Error).message}`);
        break;
      }
      if (e === null) break;
      this.ctx.log.debug(`NAT udp ${flow.name}: ${e.error} (ICMP type ${e.type} code ${e.code} from ${e.offender ?? 'the host'})`);
      this.ctx.icmpErrors?.relay(
        quotedUdp(flow.family, flow.source, flow.sourcePort, flow.dest, flow.destPort, this.buffer.subarray(0, e.length)),
        e,
      );
    }
    return n;
  }

  /** A send-only socket in the NAT namespace with the destination's address and port as its own. */
  private replySocket(family: 4 | 6, dest: string, destPort: number): dgram.Socket {
    // SO_REUSEADDR: every flow to one destination (many peers asking one resolver) binds the same address.
    const fd = socketInNetns(this.ctx.netnsFd, family, 'udp', { transparent: true, reuseAddr: true });
    try {
      bindSocket(fd, dest, destPort);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const s = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    s.bind({ fd });
    return s;
  }

  private touch(flow: Flow): void {
    flow.timer.refresh();
  }

  private expire(flow: Flow): void {
    this.ctx.counters.udpExpired++;
    this.endFlow(flow);
  }

  private endFlow(flow: Flow): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.flows.delete(flow.key);
    clearTimeout(flow.timer);
    flow.watcher.stop();
    closeSync(flow.host);
    flow.reply.close();
    this.ctx.limits.release(flow.source);
  }

  /** Ends every flow from these (canonical) peer addresses; returns how many. */
  closeFrom(sources: ReadonlySet<string>): number {
    let n = 0;
    for (const f of [...this.flows.values()]) {
      if (!sources.has(canonicalAddress(f.source))) continue;
      this.endFlow(f);
      n++;
    }
    return n;
  }

  /** Null while its transparent sockets are open; else what is wrong (/readyz). */
  down(): string | null {
    if (this.listeners.length === 0) return 'its UDP relay does not listen';
    for (const l of this.listeners) {
      try {
        fstatSync(l.fd);
      } catch (err) {
        return `its UDP relay's socket is gone: ${(err as Error).message}`;
      }
    }
    return null;
  }

  close(): void {
    for (const l of this.listeners.splice(0)) {
      l.watcher.stop();
      closeSync(l.fd);
    }
    for (const f of [...this.flows.values()]) this.endFlow(f);
  }
}
