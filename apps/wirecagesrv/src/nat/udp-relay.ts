// UDP through the NAT. tproxy steers every datagram from the tunnel to one
// transparent socket per family in the NAT namespace, which reads it with its
// original destination (IP_ORIGDSTADDR). Datagrams are tracked per 5-tuple:
// each flow has a socket in the host network connected to the destination,
// and a transparent socket in the NAT namespace bound to the destination's
// address and port, from which the replies go back, so the peer sees them come
// from where it sent. A flow ends after its idle timeout and both sockets are
// closed (nothing is left behind per query).
import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import { bindSocket, recvWithOrigDst, socketAddress, socketInNetns, watchReadable } from '@wirecage/netns';
import type { RelayContext } from './tcp-relay.js';

/** Idle time after which a flow is forgotten. Refreshed by traffic either way. */
export const UDP_IDLE_MS = 60_000;
/** DNS is one query and one answer: its flows go sooner, so a resolver's many source ports do not pile up. */
export const DNS_IDLE_MS = 10_000;
/** Datagrams held per flow while its host socket connects; more are dropped. */
const PENDING_LIMIT = 64;
/** Datagrams read per readable event before yielding to the event loop. */
const READ_BATCH = 256;

export interface UdpRelayOptions {
  idleMs?: number;
  dnsIdleMs?: number;
}

interface Flow {
  key: string;
  source: string;
  sourcePort: number;
  family: 4 | 6;
  host: dgram.Socket;
  reply: dgram.Socket;
  /** Datagrams waiting for the host socket to connect; null once connected. */
  pending: Buffer[] | null;
  timer: NodeJS.Timeout;
  idleMs: number;
}

const where = (address: string, port: number) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

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
      throw new Error(`the NAT cannot listen for UDP: ${(err as Error).message}`);
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
      flow = this.startFlow(key, family, source, sourcePort, dest, destPort) ?? undefined;
      if (!flow) return;
    }
    this.touch(flow);
    if (flow.pending) {
      if (flow.pending.length < PENDING_LIMIT) flow.pending.push(data);
      else this.ctx.counters.udpDropped++;
      return;
    }
    flow.host.send(data);
  }

  private startFlow(key: string, family: 4 | 6, source: string, sourcePort: number, dest: string, destPort: number): Flow | null {
    const ctx = this.ctx;
    const name = `${where(source, sourcePort)} -> ${where(dest, destPort)}`;
    const refused = ctx.policy.check(dest);
    if (refused !== null) {
      ctx.counters.udpRefusedByPolicy++;
      ctx.log.debug(`NAT udp ${name}: dropped (${refused})`);
      return null;
    }
    const limit = ctx.limits.acquire(source);
    if (limit !== null) {
      ctx.counters.udpRefusedByLimit++;
      ctx.log.warn(`NAT udp ${name}: dropped, the ${limit === 'peer' ? 'per-peer' : 'global'} flow limit is reached`);
      return null;
    }
    let reply: dgram.Socket;
    try {
      reply = this.replySocket(family, dest, destPort);
    } catch (err) {
      ctx.limits.release(source);
      ctx.counters.udpDropped++;
      ctx.log.warn(`NAT udp ${name}: ${(err as Error).message}`);
      return null;
    }
    ctx.counters.udpFlows++;
    const host = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    const idleMs = destPort === 53 ? (this.opts.dnsIdleMs ?? DNS_IDLE_MS) : (this.opts.idleMs ?? UDP_IDLE_MS);
    const flow: Flow = { key, source, sourcePort, family, host, reply, pending: [], idleMs, timer: setTimeout(() => this.expire(flow), idleMs) };
    this.flows.set(key, flow);
    host.on('message', (msg) => {
      this.touch(flow);
      flow.reply.send(msg, flow.sourcePort, flow.source);
    });
    // ICMP errors (port unreachable) surface as errors on a connected socket; the flow just idles out.
    host.on('error', (err: NodeJS.ErrnoException) => ctx.log.debug(`NAT udp ${name}: ${err.code ?? err.message}`));
    reply.on('error', (err: NodeJS.ErrnoException) => ctx.log.debug(`NAT udp ${name} (reply): ${err.code ?? err.message}`));
    // Node hands a failed connect (no route for that family, say) to the callback.
    host.connect(destPort, dest, ((err?: Error) => {
      if (err) {
        ctx.log.debug(`NAT udp ${name}: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
        ctx.counters.udpDropped += flow.pending?.length ?? 0;
        this.endFlow(flow);
        return;
      }
      const queued = flow.pending ?? [];
      flow.pending = null;
      for (const d of queued) host.send(d);
    }) as () => void);
    return flow;
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
    flow.host.close();
    flow.reply.close();
    this.ctx.limits.release(flow.source);
  }

  close(): void {
    for (const l of this.listeners.splice(0)) {
      l.watcher.stop();
      closeSync(l.fd);
    }
    for (const f of [...this.flows.values()]) this.endFlow(f);
  }
}
