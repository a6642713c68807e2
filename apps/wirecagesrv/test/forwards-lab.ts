// A small network lab for the forward relay tests, built with `ip` in
// namespaces this test creates (and always deletes):
//
//   inet (198.51.100.2)  --veth--  edge (198.51.100.1: public listeners)
//   nat  (10.200.100.1)  --veth--  cage (10.200.100.2, default route via nat)
//
// nat has what the server's NAT namespace has for forwards: replies to a
// transparent socket are marked and routed to the local stack. Sockets are
// opened into the namespaces by fd, so no traffic touches the machine's own.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import { bindSocket, listenSocket, socketInNetns } from '@wirecage/netns';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export class ForwardLab {
  readonly prefix = `wcf${process.pid % 100000}`;
  readonly names = ['inet', 'edge', 'nat', 'cage'].map((n) => `${this.prefix}${n}`);
  readonly fds: Record<'inet' | 'edge' | 'nat' | 'cage', number>;
  readonly edgeAddress = '198.51.100.1';
  readonly clientAddress = '198.51.100.2';
  readonly peer4 = '10.200.100.2';
  readonly peer6 = 'fd00:ab::2';

  constructor() {
    this.teardown();
    try {
      for (const n of this.names) ip('netns', 'add', n);
      const [inet, edge, nat, cage] = this.names as [string, string, string, string];
      const p = this.prefix;
      ip('link', 'add', `${p}a`, 'netns', inet, 'type', 'veth', 'peer', 'name', `${p}b`, 'netns', edge);
      ip('link', 'add', `${p}c`, 'netns', nat, 'type', 'veth', 'peer', 'name', `${p}d`, 'netns', cage);
      const up = (ns: string, dev: string, ...addrs: string[]) => {
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        for (const a of addrs) ip('-n', ns, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
        ip('-n', ns, 'link', 'set', dev, 'up');
      };
      up(inet, `${p}a`, `${this.clientAddress}/24`, '2001:db8:5::2/64');
      up(edge, `${p}b`, `${this.edgeAddress}/24`, '2001:db8:5::1/64');
      up(nat, `${p}c`, '10.200.100.1/24', 'fd00:ab::1/64');
      up(cage, `${p}d`, `${this.peer4}/24`, `${this.peer6}/64`);
      ip('-n', cage, 'route', 'add', 'default', 'via', '10.200.100.1');
      ip('-n', cage, '-6', 'route', 'add', 'default', 'via', 'fd00:ab::1');
      for (const fam of ['-4', '-6']) {
        ip('-n', nat, fam, 'rule', 'add', 'fwmark', '1', 'lookup', '100');
        ip('-n', nat, fam, 'route', 'add', 'local', fam === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', '100');
      }
      execFileSync('ip', ['netns', 'exec', nat, 'nft', '-f', '-'], {
        input:
          'table inet wcf {\n chain pre {\n  type filter hook prerouting priority mangle; policy accept;\n  socket transparent 1 meta mark set 1 accept\n }\n}\n',
      });
      this.fds = { inet: this.open(inet), edge: this.open(edge), nat: this.open(nat), cage: this.open(cage) };
    } catch (err) {
      this.teardown();
      throw err;
    }
  }

  private open(ns: string): number {
    return openSync(`/run/netns/${ns}`, 'r');
  }

  /** A TCP server in the cage on the peer's addresses. */
  async cageTcpServer(port: number, family: 4 | 6, onConn: (s: net.Socket) => void): Promise<net.Server> {
    const fd = socketInNetns(this.fds.cage, family, 'tcp', { reuseAddr: true });
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
    const fd = socketInNetns(this.fds.cage, family, 'udp');
    bindSocket(fd, family === 6 ? this.peer6 : this.peer4, port);
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind({ fd }, r));
    return s;
  }

  /** A TCP connection from the inet namespace to the edge. */
  connect(port: number, host = this.edgeAddress): net.Socket {
    const fd = socketInNetns(this.fds.inet, net.isIPv6(host) ? 6 : 4, 'tcp');
    const s = new net.Socket({ fd, allowHalfOpen: true, manualStart: true } as net.SocketConstructorOpts);
    s.connect({ host, port });
    return s;
  }

  /** A UDP socket in the inet namespace, bound to a port of its own. */
  async inetUdp(family: 4 | 6 = 4): Promise<dgram.Socket> {
    const fd = socketInNetns(this.fds.inet, family, 'udp');
    bindSocket(fd, family === 6 ? '2001:db8:5::2' : this.clientAddress, 0);
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind({ fd }, r));
    return s;
  }

  /** A TCP listener in the edge namespace: a port "someone else" holds. */
  async edgeSquatter(port: number): Promise<net.Server> {
    const fd = socketInNetns(this.fds.edge, 4, 'tcp', { reuseAddr: true });
    bindSocket(fd, '0.0.0.0', port);
    listenSocket(fd);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen({ fd }, r));
    return srv;
  }

  teardown(): void {
    for (const fd of Object.values(this.fds ?? {})) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    for (const n of this.names) {
      try {
        ip('netns', 'del', n);
      } catch {
        // not there
      }
    }
  }
}
