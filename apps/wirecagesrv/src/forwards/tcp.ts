// A TCP forward: connections accepted on the public port are relayed into the
// NAT namespace to the peer, from a socket that carries the remote client's
// own address and port. The client's socket stays paused until the cage has
// accepted, so a refused or unreachable target reaches the client as a
// reset, never as an accepted-then-closed connection. Data flows with
// pipe() (backpressure both ways); allowHalfOpen on both sockets carries a
// half-close through; an error on either side resets the other.
import net from 'node:net';
import { connectTransparentTcp, listenTcp, remoteOf } from './sockets.js';
import { peerAddress, type ForwardListener, type ForwardTarget, type RelayContext } from './types.js';

export interface TcpForwardOptions {
  /** Most connections open at once; more are refused by the kernel's backlog. Default 1024. */
  maxConnections?: number;
  /** Milliseconds to wait for the cage to accept. Default 10 s. */
  connectTimeoutMs?: number;
}

export class TcpForward implements ForwardListener {
  private readonly conns = new Set<net.Socket>();

  private constructor(
    readonly target: ForwardTarget,
    private readonly server: net.Server,
  ) {}

  static async open(
    target: ForwardTarget,
    listen: { netnsFd: number | null; host: string },
    ctx: RelayContext,
    opts: TcpForwardOptions = {},
  ): Promise<TcpForward> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.maxConnections = opts.maxConnections ?? 1024;
    const fwd = new TcpForward(target, server);
    server.on('connection', (client) => fwd.relay(client, ctx, opts.connectTimeoutMs ?? 10_000));
    server.on('error', (err) => ctx.logger.warn(`tcp forward ${target.publicPort}: ${err.message}`));
    await listenTcp(listen.netnsFd, listen.host, target.publicPort, server);
    return fwd;
  }

  get active(): number {
    return this.conns.size;
  }

  private track(s: net.Socket): void {
    this.conns.add(s);
    s.once('close', () => this.conns.delete(s));
  }

  private relay(client: net.Socket, ctx: RelayContext, connectTimeoutMs: number): void {
    const log = ctx.logger;
    const port = this.target.publicPort;
    this.track(client);
    let upstream: net.Socket | null = null;
    // Either side failing resets the other; a clean end travels through pipe() as a half-close,
    // and each socket closes itself once both of its directions are done (autoDestroy).
    client.on('error', () => {
      if (upstream && !upstream.destroyed) upstream.resetAndDestroy();
    });
    const nat = ctx.natNetnsFd();
    if (nat === null || !client.remoteAddress) {
      log.warn(`tcp forward ${port}: no NAT namespace to relay into; connection refused`);
      client.resetAndDestroy();
      return;
    }
    const from = remoteOf(client.remoteAddress, client.remotePort ?? 0);
    const to = { address: peerAddress(this.target, from.family), port: this.target.targetPort };
    try {
      upstream = connectTransparentTcp(nat, from, to);
    } catch (err) {
      log.warn(`tcp forward ${port}: cannot open a socket for ${from.address}:${from.port}: ${(err as Error).message}`);
      client.resetAndDestroy();
      return;
    }
    const up = upstream;
    this.track(up);
    up.setTimeout(connectTimeoutMs);
    up.once('timeout', () => up.destroy(new Error(`the cage did not answer within ${connectTimeoutMs / 1000} s`)));
    up.on('error', (err) => {
      log.debug(`tcp forward ${port} -> ${to.address}:${to.port} for ${from.address}:${from.port}: ${err.message}`);
      if (!client.destroyed) client.resetAndDestroy();
    });
    up.once('connect', () => {
      up.setTimeout(0);
      up.setNoDelay(true);
      client.setNoDelay(true);
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.conns) s.resetAndDestroy();
    await closed;
  }
}
