// A UDP forward: each remote address:port is a flow with its own socket in
// the NAT namespace, bound (transparently) to that remote address and port
// and connected to the peer, so the service in the cage sees the real
// sender, and its replies come back on that socket and leave the public
// port toward the sender. A flow ends after an idle timeout; flows are
// bounded per forward, and datagrams that arrive while a flow's socket is
// being made wait in a small bounded queue.
import type dgram from 'node:dgram';
import { bindUdp, connectTransparentUdp, remoteOf, type Remote } from './sockets.js';
import { peerAddress, type ForwardListener, type ForwardTarget, type RelayContext } from './types.js';

export interface UdpForwardOptions {
  /** A flow with no datagram either way for this long is closed. Default 60 s. */
  idleMs?: number;
  /** Most flows at once; datagrams of new flows beyond it are dropped. Default 1024. */
  maxFlows?: number;
}

/** Datagrams held for a flow whose socket is not ready yet. */
const PENDING_MAX = 16;

interface Flow {
  remote: Remote;
  sock: dgram.Socket | null;
  pending: Buffer[];
  timer: NodeJS.Timeout;
  closed: boolean;
}

export class UdpForward implements ForwardListener {
  private readonly flows = new Map<string, Flow>();
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private closing = false;

  private constructor(
    readonly target: ForwardTarget,
    private readonly sock: dgram.Socket,
    private readonly ctx: RelayContext,
    opts: UdpForwardOptions,
  ) {
    this.idleMs = opts.idleMs ?? 60_000;
    this.maxFlows = opts.maxFlows ?? 1024;
  }

  static async open(
    target: ForwardTarget,
    listen: { netnsFd: number | null; host: string },
    ctx: RelayContext,
    opts: UdpForwardOptions = {},
  ): Promise<UdpForward> {
    const sock = await bindUdp(listen.netnsFd, listen.host, target.publicPort);
    const fwd = new UdpForward(target, sock, ctx, opts);
    sock.on('message', (msg, rinfo) => fwd.inbound(msg, rinfo.address, rinfo.port));
    sock.on('error', (err) => ctx.logger.warn(`udp forward ${target.publicPort}: ${err.message}`));
    return fwd;
  }

  get active(): number {
    return this.flows.size;
  }

  private inbound(msg: Buffer, address: string, port: number): void {
    const key = `${address}|${port}`;
    let flow = this.flows.get(key);
    if (!flow) {
      const nat = this.ctx.natNetnsFd();
      if (nat === null) {
        this.ctx.logger.debug(`udp forward ${this.target.publicPort}: no NAT namespace to relay into; datagram dropped`);
        return;
      }
      if (this.flows.size >= this.maxFlows) {
        this.ctx.logger.debug(
          `udp forward ${this.target.publicPort}: ${this.maxFlows} flows open; datagram from ${address}:${port} dropped`,
        );
        return;
      }
      flow = this.startFlow(key, remoteOf(address, port), nat);
    }
    flow.timer.refresh();
    if (flow.sock) flow.sock.send(msg);
    else if (flow.pending.length < PENDING_MAX) flow.pending.push(msg);
  }

  private startFlow(key: string, remote: Remote, nat: number): Flow {
    const flow: Flow = { remote, sock: null, pending: [], timer: setTimeout(() => this.endFlow(key, flow), this.idleMs), closed: false };
    this.flows.set(key, flow);
    const to = { address: peerAddress(this.target, remote.family), port: this.target.targetPort };
    connectTransparentUdp(nat, remote, to).then(
      (sock) => {
        if (flow.closed) {
          sock.close();
          return;
        }
        flow.sock = sock;
        sock.on('message', (reply) => {
          flow.timer.refresh();
          // Back out of the public port; the listener's own address family decides the form of the address.
          this.sock.send(reply, remote.port, this.replyAddress(remote));
        });
        // An ICMP error on a connected socket (port unreachable in the cage) surfaces here; the flow lives on.
        sock.on('error', (err) =>
          this.ctx.logger.debug(`udp forward ${this.target.publicPort} flow ${remote.address}:${remote.port}: ${err.message}`),
        );
        for (const m of flow.pending.splice(0)) sock.send(m);
      },
      (err: Error) => {
        this.ctx.logger.warn(
          `udp forward ${this.target.publicPort}: cannot open a socket for ${remote.address}:${remote.port}: ${err.message}`,
        );
        this.endFlow(key, flow);
      },
    );
    return flow;
  }

  private replyAddress(remote: Remote): string {
    return remote.family === 4 && this.sock.address().family === 'IPv6' ? `::ffff:${remote.address}` : remote.address;
  }

  private endFlow(key: string, flow: Flow): void {
    if (flow.closed) return;
    flow.closed = true;
    clearTimeout(flow.timer);
    flow.pending.length = 0;
    flow.sock?.close();
    if (this.flows.get(key) === flow) this.flows.delete(key);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const [key, flow] of this.flows) this.endFlow(key, flow);
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
  }
}
