// The live side of port forwards: one listener per (protocol, public port),
// opened before a forward is recorded (so a port that cannot be bound is an
// error, never a success) and closed, with every connection and flow through
// it, when the forward is removed.
import { silentLogger, type Logger } from '@wirecage/wg-engine';
import type { ForwardProtocol } from '../registry/index.js';
import { TcpForward, type TcpForwardOptions } from './tcp.js';
import { UdpForward, type UdpForwardOptions } from './udp.js';
import type { PortRange } from './ports.js';
import type { ForwardListener, ForwardTarget, RelayContext } from './types.js';

export const DEFAULT_FORWARD_LISTEN_ADDRESS = '0.0.0.0';

export interface ForwardManagerOptions {
  /** Address the public ports are bound on; "::" takes both families. Default 0.0.0.0. */
  listenAddress?: string;
  /** The public ports forwards may take (--forward-ports); every port when absent (a library user's own choice). */
  ports?: PortRange;
  /** Namespace of the public listeners; default (null) this process's own. */
  listenNetnsFd?: number | null;
  /** The NAT namespace the peers are reached in; null until there is one. */
  natNetnsFd?: number | null;
  tcp?: TcpForwardOptions;
  udp?: UdpForwardOptions;
  logger?: Logger;
}

/** The public port cannot be bound (taken by another program, or privileged). */
export class ForwardBindError extends Error {
  override name = 'ForwardBindError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

const key = (protocol: ForwardProtocol, port: number) => `${protocol}/${port}`;

export class ForwardManager {
  readonly listenAddress: string;
  readonly ports: PortRange | null;
  private readonly listeners = new Map<string, ForwardListener>();
  private readonly ctx: RelayContext;
  private nat: number | null;

  constructor(private readonly opts: ForwardManagerOptions = {}) {
    this.listenAddress = opts.listenAddress ?? DEFAULT_FORWARD_LISTEN_ADDRESS;
    this.ports = opts.ports ?? null;
    this.nat = opts.natNetnsFd ?? null;
    this.ctx = { natNetnsFd: () => this.nat, logger: opts.logger ?? silentLogger };
  }

  /** Sets (or clears) the NAT namespace new connections are relayed into. */
  setNatNetns(fd: number | null): void {
    this.nat = fd;
  }

  /** Binds the public port and starts relaying; ForwardBindError when the port cannot be bound. */
  async open(target: ForwardTarget): Promise<void> {
    const k = key(target.protocol, target.publicPort);
    if (this.listeners.has(k))
      throw new ForwardBindError(`${target.protocol} port ${target.publicPort} is already open here`, 'EADDRINUSE');
    const listen = { netnsFd: this.opts.listenNetnsFd ?? null, host: this.listenAddress };
    let l: ForwardListener;
    try {
      l =
        target.protocol === 'tcp'
          ? await TcpForward.open(target, listen, this.ctx, this.opts.tcp)
          : await UdpForward.open(target, listen, this.ctx, this.opts.udp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? 'another program holds it'
          : code === 'EACCES'
            ? 'ports below net.ipv4.ip_unprivileged_port_start need privileges'
            : (err as Error).message;
      throw new ForwardBindError(`cannot listen on ${target.protocol} ${this.listenAddress} port ${target.publicPort}: ${why}`, code);
    }
    // Another open of the same port may have finished meanwhile (it would have failed to bind, but be sure).
    if (this.listeners.has(k)) {
      await l.close();
      throw new ForwardBindError(`${target.protocol} port ${target.publicPort} is already open here`, 'EADDRINUSE');
    }
    this.listeners.set(k, l);
  }

  /** Listening forwards. */
  get openCount(): number {
    return this.listeners.size;
  }

  isOpen(protocol: ForwardProtocol, publicPort: number): boolean {
    return this.listeners.has(key(protocol, publicPort));
  }

  /** Open connections (TCP) or flows (UDP) through a forward; 0 when it is not open. */
  activeFlows(protocol: ForwardProtocol, publicPort: number): number {
    return this.listeners.get(key(protocol, publicPort))?.active ?? 0;
  }

  /** Stops a forward: its listener and every connection through it. */
  async close(protocol: ForwardProtocol, publicPort: number): Promise<boolean> {
    const k = key(protocol, publicPort);
    const l = this.listeners.get(k);
    if (!l) return false;
    this.listeners.delete(k);
    await l.close();
    return true;
  }

  /** Stops every forward relaying to these tunnel addresses (a peer that is gone); how many. */
  async closeTo(address4: string): Promise<number> {
    const gone = [...this.listeners].filter(([, l]) => l.target.address4 === address4);
    for (const [k] of gone) this.listeners.delete(k);
    await Promise.all(gone.map(([, l]) => l.close()));
    return gone.length;
  }

  /** The forwards listening here: protocol/port and where they relay. */
  targets(): ForwardTarget[] {
    return [...this.listeners.values()].map((l) => l.target);
  }

  async closeAll(): Promise<void> {
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((l) => l.close()));
  }
}
