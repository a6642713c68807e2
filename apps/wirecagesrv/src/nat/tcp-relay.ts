// TCP through the NAT: the kernel in the NAT namespace terminates the peer's
// connection on a transparent listener (tproxy), whose accepted socket's
// local address is where the peer was going. Each one is checked against the
// egress policy and the flow limits, then relayed to a connection opened from
// the server's host network, with backpressure both ways (pipe) and
// half-close carried (allowHalfOpen on both sides; one side's FIN ends the
// other's writing). A destination that refuses, is unreachable or does not
// answer reaches the peer as a reset, never as a clean close: a clean close
// would tell the peer's program that the server sent an empty reply.
import { closeSync } from 'node:fs';
import net from 'node:net';
import { bindSocket, listenSocket, socketAddress, socketInNetns } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { formatHostPort } from '@wirecage/wg-engine/config';
import type { NatCounters } from './counters.js';
import type { IcmpErrorSender } from './icmp-error-sender.js';
import type { FlowLimits } from './limits.js';
import type { EgressPolicy } from './policy.js';
import { canonicalAddress } from './address.js';
import { admitFlow } from './admit.js';

/** How long a host-side connection may take before the peer gets a reset. */
export const TCP_CONNECT_TIMEOUT_MS = 10_000;
const KEEPALIVE_MS = 60_000;

export interface RelayContext {
  netnsFd: number;
  policy: EgressPolicy;
  limits: FlowLimits;
  counters: NatCounters;
  log: Logger;
  connectTimeoutMs?: number;
  /** Where the UDP and ping relays send peers the ICMP errors their host sockets get; none when null or absent. */
  icmpErrors?: IcmpErrorSender | null;
}

function reset(s: net.Socket): void {
  if (!s.destroyed) s.resetAndDestroy();
}

export class TcpRelay {
  /** The port of the transparent listeners (both families), picked by the kernel. */
  port = 0;
  private readonly servers: net.Server[] = [];
  /** Each relayed connection: its two sockets and the (canonical) peer address it came from. */
  private readonly pairs = new Set<{ source: string; client: net.Socket; upstream: net.Socket }>();

  private constructor(private readonly ctx: RelayContext) {}

  /** Transparent listeners for both families on one port, inside the NAT namespace. */
  static async listen(ctx: RelayContext): Promise<TcpRelay> {
    const relay = new TcpRelay(ctx);
    try {
      for (const family of [4, 6] as const) await relay.listenFamily(family);
    } catch (err) {
      await relay.close();
      throw new Error(`the NAT cannot listen for TCP: ${(err as Error).message}`, { cause: err });
    }
    return relay;
  }

  private async listenFamily(family: 4 | 6): Promise<void> {
    const fd = socketInNetns(this.ctx.netnsFd, family, 'tcp', { transparent: true, reuseAddr: true });
    try {
      bindSocket(fd, family === 4 ? '0.0.0.0' : '::', this.port);
      listenSocket(fd, 1024);
      this.port = socketAddress(fd).port;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    // pauseOnConnect: nothing is read from the peer until the destination has answered.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.accept(client));
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.ctx.log.error(`NAT TCP listener: ${err.message}`));
  }

  /** Open relayed connections. */
  get active(): number {
    return this.pairs.size;
  }

  private accept(client: net.Socket): void {
    const source = client.remoteAddress ?? '';
    const dest = client.localAddress ?? '';
    const destPort = client.localPort ?? 0;
    const flow = `${formatHostPort({ host: source, port: client.remotePort ?? 0 })} -> ${formatHostPort({ host: dest, port: destPort })}`;
    if (!admitFlow(this.ctx, 'tcp', flow, source, dest)) {
      client.on('error', () => {});
      reset(client);
      return;
    }
    this.ctx.counters.tcpFlows++;
    const upstream = net.connect({ host: dest, port: destPort, allowHalfOpen: true });
    const pair = { source: canonicalAddress(source), client, upstream };
    this.pairs.add(pair);
    let closed = 0;
    const onClose = () => {
      if (++closed < 2) return;
      this.pairs.delete(pair);
      this.ctx.limits.release(source);
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    this.splice(flow, client, upstream);
  }

  /** Joins the peer's connection to the destination once that connects; errors on either side reset the other. */
  private splice(flow: string, client: net.Socket, upstream: net.Socket): void {
    const ctx = this.ctx;
    let connected = false;
    // Until connected, the timeout is the connect timeout; afterwards there is none (keepalive finds dead peers).
    upstream.setTimeout(ctx.connectTimeoutMs ?? TCP_CONNECT_TIMEOUT_MS, () => {
      ctx.counters.tcpConnectFailures++;
      ctx.log.debug(`NAT tcp ${flow}: no answer from the destination`);
      reset(upstream);
      reset(client);
    });
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      for (const s of [upstream, client]) {
        s.setKeepAlive(true, KEEPALIVE_MS);
        s.setNoDelay(true);
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) ctx.counters.tcpConnectFailures++;
      ctx.log.debug(`NAT tcp ${flow}: ${connected ? 'destination side' : 'cannot connect'}: ${err.code ?? err.message}`);
      reset(client);
    });
    // A reset (or any error) on the peer's side is passed on as a reset.
    client.on('error', () => reset(upstream));
  }

  /** Resets both sides of every connection from these (canonical) peer addresses; returns how many. */
  closeFrom(sources: ReadonlySet<string>): number {
    let n = 0;
    for (const p of [...this.pairs]) {
      if (!sources.has(p.source)) continue;
      reset(p.upstream);
      reset(p.client);
      n++;
    }
    return n;
  }

  /** Null while both transparent listeners listen; else what is wrong (/readyz). */
  down(): string | null {
    return this.servers.length > 0 && this.servers.every((s) => s.listening) ? null : 'its TCP relay does not listen';
  }

  /** Cuts every relayed connection and stops listening. */
  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
