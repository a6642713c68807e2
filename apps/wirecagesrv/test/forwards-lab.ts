// A small network lab for the forward relay tests, on the project's one lab
// (@wirecage/netns/lab), removed by dispose() also when a test fails:
//
//   inet (198.51.100.2)  --veth--  edge (198.51.100.1: public listeners)
//   nat  (10.200.100.1)  --veth--  cage (10.200.100.2, default route via nat)
//
// nat has what the server's NAT namespace has for forwards: replies to a
// transparent socket are marked and routed to the local stack. Sockets are
// opened into the namespaces by fd, so no traffic touches the machine's own.
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { bindSocket, listenSocket, socketInNetns } from '@wirecage/netns';
import { Lab, type LabNetns } from '@wirecage/netns/lab';

const EDGE = { v4: '198.51.100.1', v6: '2001:db8:5::1' };
const CLIENT = { v4: '198.51.100.2', v6: '2001:db8:5::2' };
const GATEWAY = { v4: '10.200.100.1', v6: 'fd00:ab::1' };
const PEER = { v4: '10.200.100.2', v6: 'fd00:ab::2' };

const TRANSPARENT_REPLIES = `table inet wcf {
 chain pre {
  type filter hook prerouting priority mangle; policy accept;
  socket transparent 1 meta mark set 1 accept
 }
}
`;

/** Loads an nftables ruleset into a lab namespace. */
export function nftLoad(ns: LabNetns, ruleset: string): void {
  const [cmd, ...args] = ns.argv('nft', '-f', '-');
  execFileSync(cmd, args, { input: ruleset, stdio: ['pipe', 'ignore', 'pipe'] });
}

export class ForwardLab {
  readonly edgeAddress = EDGE.v4;
  readonly edgeAddress6 = EDGE.v6;
  readonly clientAddress = CLIENT.v4;
  readonly clientAddress6 = CLIENT.v6;
  readonly gateway4 = GATEWAY.v4;
  readonly gateway6 = GATEWAY.v6;
  readonly peer4 = PEER.v4;
  readonly peer6 = PEER.v6;

  private constructor(
    private readonly lab: Lab,
    readonly inet: LabNetns,
    readonly edge: LabNetns,
    readonly nat: LabNetns,
    readonly cage: LabNetns,
    /** nat's end of the veth to the cage: where the server has its TUN. */
    readonly natIfname: string,
  ) {}

  static async create(): Promise<ForwardLab> {
    const lab = new Lab({ prefix: 'wcf' });
    try {
      const [inet, edge, nat, cage] = ['inet', 'edge', 'nat', 'cage'].map((label) => lab.namespace(label)) as [
        LabNetns,
        LabNetns,
        LabNetns,
        LabNetns,
      ];
      await lab.veth(inet, edge, { v4: [`${CLIENT.v4}/24`, `${EDGE.v4}/24`], v6: [`${CLIENT.v6}/64`, `${EDGE.v6}/64`] });
      const toCage = await lab.veth(nat, cage, { v4: [`${GATEWAY.v4}/24`, `${PEER.v4}/24`], v6: [`${GATEWAY.v6}/64`, `${PEER.v6}/64`] });
      cage.addRoute({ to: '0.0.0.0/0', via: GATEWAY.v4 });
      cage.addRoute({ to: '::/0', via: GATEWAY.v6 });
      for (const [fam, all] of [
        ['-4', '0.0.0.0/0'],
        ['-6', '::/0'],
      ] as const) {
        nat.ip(fam, 'rule', 'add', 'fwmark', '1', 'lookup', '100');
        nat.ip(fam, 'route', 'add', 'local', all, 'dev', 'lo', 'table', '100');
      }
      nftLoad(nat, TRANSPARENT_REPLIES);
      return new ForwardLab(lab, inet, edge, nat, cage, toCage.a.ifname);
    } catch (err) {
      await lab.dispose();
      throw err;
    }
  }

  /** A TCP server in the cage on the peer's addresses. */
  async cageTcpServer(port: number, family: 4 | 6, onConn: (s: net.Socket) => void): Promise<net.Server> {
    const fd = socketInNetns(this.cage.fd, family, 'tcp', { reuseAddr: true });
    bindSocket(fd, family === 6 ? this.peer6 : this.peer4, port);
    listenSocket(fd);
    const srv = net.createServer({ allowHalfOpen: true }, (c) => {
      c.on('error', () => {}); // cut by the relay in some tests
      onConn(c);
    });
    await new Promise<void>((r) => srv.listen({ fd }, r));
    return srv;
  }

  /** A UDP socket in the cage on the peer's address. */
  async cageUdp(port: number, family: 4 | 6 = 4): Promise<dgram.Socket> {
    const fd = socketInNetns(this.cage.fd, family, 'udp');
    bindSocket(fd, family === 6 ? this.peer6 : this.peer4, port);
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind({ fd }, r));
    return s;
  }

  /** A TCP connection from the inet namespace to the edge. */
  connect(port: number, host = this.edgeAddress): net.Socket {
    const fd = socketInNetns(this.inet.fd, net.isIPv6(host) ? 6 : 4, 'tcp');
    const s = new net.Socket({ fd, allowHalfOpen: true, manualStart: true } as net.SocketConstructorOpts);
    s.connect({ host, port });
    return s;
  }

  /** A UDP socket in the inet namespace, bound to a port of its own. */
  async inetUdp(family: 4 | 6 = 4): Promise<dgram.Socket> {
    const fd = socketInNetns(this.inet.fd, family, 'udp');
    bindSocket(fd, family === 6 ? this.clientAddress6 : this.clientAddress, 0);
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind({ fd }, r));
    return s;
  }

  /** A TCP listener in the edge namespace: a port "someone else" holds. */
  async edgeSquatter(port: number): Promise<net.Server> {
    const fd = socketInNetns(this.edge.fd, 4, 'tcp', { reuseAddr: true });
    bindSocket(fd, '0.0.0.0', port);
    listenSocket(fd);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen({ fd }, r));
    return srv;
  }

  /** Kills what still runs in the namespaces and removes them. */
  dispose(): Promise<void> {
    return this.lab.dispose();
  }
}
