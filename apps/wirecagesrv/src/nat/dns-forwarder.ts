// The DNS server peers are told to use: UDP and TCP on port 53 of the gateway
// addresses, inside the NAT's namespace (the nftables rules leave traffic to
// the gateways to the namespace's own sockets). Each query is relayed from
// the host network to the upstream resolvers (dns-udp.ts, dns-tcp.ts): the
// server's own, or --dns-upstream. The upstream that answered last is asked
// first; one that times out (3 s) or refuses passes the query to the next,
// and when none answers the client gets SERVFAIL, never silence. Queries in
// flight are bounded (globally and per peer), so sockets are too: every
// upstream socket is closed with its query.
import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { bindSocket, listenSocket, socketInNetns } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { isQuery, servfail } from './dns-message.js';
import { relayDnsTcp } from './dns-tcp.js';
import { UpstreamSockets } from './dns-udp.js';
import { formatDnsUpstream, type DnsUpstream } from './dns-upstream.js';
import { FlowLimits } from './limits.js';
import { formatHostPort } from '@wirecage/wg-engine/config';

export const DNS_UPSTREAM_TIMEOUT_MS = 3_000;
export const DNS_MAX_IN_FLIGHT = 1024;
export const DNS_MAX_IN_FLIGHT_PER_PEER = 128;
/** A TCP connection with nothing moving either way for this long is cut. */
export const DNS_TCP_IDLE_MS = 10_000;
const WARN_EVERY_MS = 60_000;
const RECV_BUFFER_BYTES = 1 << 20;

export interface DnsForwarderOptions {
  /** The namespace the listeners live in (the NAT's); null: this process's own. */
  netnsFd: number | null;
  /** Addresses to listen on: the gateways, without prefix. */
  addresses: string[];
  /** Default 53. */
  port?: number;
  upstreams: DnsUpstream[];
  log: Logger;
  timeoutMs?: number;
  maxInFlight?: number;
  maxInFlightPerPeer?: number;
  tcpIdleMs?: number;
}

export interface DnsCounters {
  udpQueries: number;
  udpAnswered: number;
  /** SERVFAIL sent because no upstream answered (or the limits were reached). */
  udpServfail: number;
  /** Datagrams that were not DNS queries. */
  udpMalformed: number;
  /** UDP queries and TCP connections refused by the in-flight limits. */
  refusedByLimit: number;
  upstreamTimeouts: number;
  upstreamErrors: number;
  tcpConnections: number;
  /** TCP connections reset because no upstream accepted one. */
  tcpFailed: number;
}

const where = (host: string, port: number) => formatHostPort({ host, port });

export class DnsForwarder {
  readonly counters: DnsCounters = {
    udpQueries: 0,
    udpAnswered: 0,
    udpServfail: 0,
    udpMalformed: 0,
    refusedByLimit: 0,
    upstreamTimeouts: 0,
    upstreamErrors: 0,
    tcpConnections: 0,
    tcpFailed: 0,
  };
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly tcpOpen = new Set<net.Socket>();
  private readonly sockets = new UpstreamSockets();
  private readonly limits: FlowLimits;
  private preferred = 0;
  private lastWarn = 0;
  private closed = false;

  private constructor(private readonly o: DnsForwarderOptions) {
    this.limits = new FlowLimits(o.maxInFlight ?? DNS_MAX_IN_FLIGHT, o.maxInFlightPerPeer ?? DNS_MAX_IN_FLIGHT_PER_PEER);
  }

  static async start(o: DnsForwarderOptions): Promise<DnsForwarder> {
    if (o.upstreams.length === 0) throw new Error('the DNS forwarder needs at least one upstream resolver');
    const f = new DnsForwarder(o);
    const port = o.port ?? 53;
    try {
      for (const address of o.addresses) {
        f.listenUdp(address, port);
        await f.listenTcp(address, port);
      }
    } catch (err) {
      await f.close();
      throw new Error(`the DNS forwarder cannot listen on port ${port} of ${o.addresses.join(', ')}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    o.log.info(
      `DNS forwarder on ${o.addresses.map((a) => where(a, port)).join(' and ')} (UDP, TCP), upstream ${o.upstreams.map(formatDnsUpstream).join(', ')}`,
    );
    return f;
  }

  /** UDP queries being resolved plus open TCP connections. */
  get inFlight(): number {
    return this.limits.active;
  }

  /** Upstream UDP sockets open now (one per query being asked). */
  get upstreamSockets(): number {
    return this.sockets.size;
  }

  private family(address: string): 4 | 6 {
    return address.includes(':') ? 6 : 4;
  }

  private listenUdp(address: string, port: number): void {
    const family = this.family(address);
    const fd = socketInNetns(this.o.netnsFd, family, 'udp', { reuseAddr: true });
    try {
      bindSocket(fd, address, port);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const s = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    s.bind({ fd });
    // Room for a burst from many peers while upstream sockets are being opened (the kernel caps it at net.core.rmem_max).
    s.once('listening', () => {
      try {
        s.setRecvBufferSize(RECV_BUFFER_BYTES);
      } catch (err) {
        this.o.log.debug(`DNS forwarder udp ${where(address, port)}: ${(err as Error).message}`);
      }
    });
    s.on('message', (msg, rinfo) => this.query(s, msg, rinfo.address, rinfo.port));
    s.on('error', (err) => this.o.log.debug(`DNS forwarder udp ${where(address, port)}: ${err.message}`));
    this.udp.push(s);
  }

  private async listenTcp(address: string, port: number): Promise<void> {
    const fd = socketInNetns(this.o.netnsFd, this.family(address), 'tcp', { reuseAddr: true });
    try {
      bindSocket(fd, address, port);
      listenSocket(fd, 128);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => this.acceptTcp(c));
    this.tcp.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.log.error(`DNS forwarder tcp ${where(address, port)}: ${err.message}`));
  }

  /** The upstreams, the one that answered last first. */
  private ordered(): DnsUpstream[] {
    const u = this.o.upstreams;
    return [...u.slice(this.preferred), ...u.slice(0, this.preferred)];
  }

  private answeredBy(u: DnsUpstream): void {
    const i = this.o.upstreams.indexOf(u);
    if (i !== this.preferred) this.o.log.info(`DNS forwarder: now asking ${formatDnsUpstream(u)} first`);
    this.preferred = i;
  }

  private noUpstream(failures: string[]): void {
    const now = Date.now();
    if (now - this.lastWarn < WARN_EVERY_MS) return;
    this.lastWarn = now;
    this.o.log.warn(`DNS forwarder: no upstream answered (${failures.join('; ')}); clients get SERVFAIL`);
  }

  private query(s: dgram.Socket, msg: Buffer, source: string, sourcePort: number): void {
    this.counters.udpQueries++;
    if (!isQuery(msg)) {
      this.counters.udpMalformed++;
      return;
    }
    const reply = (answer: Buffer) => {
      if (!this.closed) s.send(answer, sourcePort, source);
    };
    if (this.limits.acquire(source) !== null) {
      this.counters.refusedByLimit++;
      this.counters.udpServfail++;
      reply(servfail(msg));
      return;
    }
    void this.resolve(msg).then((answer) => {
      this.limits.release(source);
      if (answer) this.counters.udpAnswered++;
      else this.counters.udpServfail++;
      reply(answer ?? servfail(msg));
    });
  }

  private async resolve(msg: Buffer): Promise<Buffer | null> {
    const failures: string[] = [];
    const timeoutMs = this.o.timeoutMs ?? DNS_UPSTREAM_TIMEOUT_MS;
    for (const u of this.ordered()) {
      if (this.closed) return null;
      const r = await this.sockets.ask(u, msg, timeoutMs);
      if ('answer' in r) {
        this.answeredBy(u);
        return r.answer;
      }
      if (r.failure === 'timeout') this.counters.upstreamTimeouts++;
      else this.counters.upstreamErrors++;
      failures.push(`${formatDnsUpstream(u)}: ${r.detail}`);
    }
    if (!this.closed) this.noUpstream(failures);
    return null;
  }

  private acceptTcp(client: net.Socket): void {
    const source = client.remoteAddress ?? '';
    if (this.closed || this.limits.acquire(source) !== null) {
      this.counters.refusedByLimit++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    this.counters.tcpConnections++;
    this.tcpOpen.add(client);
    void relayDnsTcp(client, {
      upstreams: () => this.ordered(),
      connectTimeoutMs: this.o.timeoutMs ?? DNS_UPSTREAM_TIMEOUT_MS,
      idleMs: this.o.tcpIdleMs ?? DNS_TCP_IDLE_MS,
      onUpstream: (u, failures) => {
        // An accepted connection says less than an answer: only UDP answers change the order.
        if (u) return;
        this.counters.tcpFailed++;
        if (!this.closed) this.noUpstream(failures);
      },
    }).finally(() => {
      this.tcpOpen.delete(client);
      this.limits.release(source);
    });
  }

  /** One line for the log at shutdown. */
  summary(): string {
    const c = this.counters;
    return (
      `DNS: ${c.udpQueries} UDP queries (${c.udpAnswered} answered, ${c.udpServfail} SERVFAIL), ${c.tcpConnections} TCP connection(s) (${c.tcpFailed} failed); ` +
      `upstream timeouts ${c.upstreamTimeouts}, errors ${c.upstreamErrors}; refused by the limits ${c.refusedByLimit}`
    );
  }

  /** Null while it listens on UDP and TCP; else what is wrong (/readyz). */
  down(): string | null {
    const listening = !this.closed && this.udp.length > 0 && this.tcp.length > 0 && this.tcp.every((s) => s.listening);
    return listening ? null : 'its DNS forwarder does not listen';
  }

  /** Stops listening and cuts every query and connection in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.udp.splice(0)) s.close();
    this.sockets.closeAll();
    for (const c of this.tcpOpen) c.destroy();
    await Promise.all(this.tcp.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
