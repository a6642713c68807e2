import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { once } from 'node:events';
import { ForwardBindError, ForwardManager } from '../src/forwards/index.js';
import { ForwardLab } from './forwards-lab.js';

// The relay itself, in a lab of namespaces (see forwards-lab.ts): public
// listeners in "edge", a remote client in "inet", the peer's services in
// "cage", reached through "nat" with transparent sockets.

function readAll(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

function nextMessage(s: dgram.Socket, ms = 3000): Promise<{ msg: Buffer; address: string; port: number }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no datagram within ${ms} ms`)), ms);
    s.once('message', (msg, r) => {
      clearTimeout(t);
      resolve({ msg, address: r.address, port: r.port });
    });
  });
}

describe('forward relay (lab)', function () {
  this.timeout(20_000);
  let lab: ForwardLab;
  let mgr: ForwardManager;
  const closers: (() => unknown)[] = [];
  before(async () => {
    lab = await ForwardLab.create();
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
    await mgr?.closeAll();
    await lab?.dispose();
  });
  beforeEach(() => {
    mgr = new ForwardManager({ listenAddress: '0.0.0.0', listenNetnsFd: lab.edge.fd, natNetnsFd: lab.nat.fd, udp: { idleMs: 500 } });
  });
  afterEach(async () => {
    await mgr.closeAll();
  });
  const target = (protocol: 'tcp' | 'udp', publicPort: number, targetPort: number) => ({
    protocol,
    publicPort,
    targetPort,
    address4: lab.peer4,
    address6: lab.peer6,
  });

  it("relays TCP both ways, and the service sees the remote client's own address and port", async () => {
    const seen: string[] = [];
    const srv = await lab.cageTcpServer(8080, 4, (c) => {
      seen.push(`${c.remoteAddress}:${c.remotePort}`);
      // Echo back a digest of everything received, after the client's half-close: proves half-close arrives.
      const h = createHash('sha256');
      c.on('data', (d) => h.update(d));
      c.on('end', () => c.end(h.digest('hex')));
    });
    closers.push(() => srv.close());
    await mgr.open(target('tcp', 9080, 8080));
    const payload = randomBytes(4 * 1024 * 1024);
    const c = lab.connect(9080);
    await once(c, 'connect');
    const localPort = c.localPort;
    const reply = readAll(c);
    c.end(payload);
    assert.equal((await reply).toString(), createHash('sha256').update(payload).digest('hex'));
    assert.deepEqual(seen, [`${lab.clientAddress}:${localPort}`]);
  });

  it('resets the client when nothing listens on the target port in the cage', async () => {
    await mgr.open(target('tcp', 9081, 8999));
    const c = lab.connect(9081);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => c.once('error', resolve));
    assert.equal(err.code, 'ECONNRESET');
  });

  it('closing a forward closes its listener and cuts its open connections', async () => {
    const srv = await lab.cageTcpServer(8082, 4, () => {});
    closers.push(() => srv.close());
    await mgr.open(target('tcp', 9082, 8082));
    const c = lab.connect(9082);
    await once(c, 'connect');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(mgr.activeFlows('tcp', 9082), 2);
    const gone = new Promise<string>((resolve) => {
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      c.once('end', () => resolve('end'));
    });
    assert.equal(await mgr.close('tcp', 9082), true);
    assert.equal(await gone, 'ECONNRESET');
    const again = lab.connect(9082);
    const refused = await new Promise<NodeJS.ErrnoException>((resolve) => again.once('error', resolve));
    assert.equal(refused.code, 'ECONNREFUSED');
    assert.equal(await mgr.close('tcp', 9082), false);
  });

  it('relays UDP request and response per remote flow; the service sees the real sender', async () => {
    const svc = await lab.cageUdp(5353);
    closers.push(() => svc.close());
    const senders: string[] = [];
    svc.on('message', (m, r) => {
      senders.push(`${r.address}:${r.port}`);
      svc.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address);
    });
    await mgr.open(target('udp', 9053, 5353));
    const a = await lab.inetUdp();
    const b = await lab.inetUdp();
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    for (const [s, text] of [
      [a, 'one'],
      [b, 'two'],
      [a, 'three'],
    ] as const) {
      const got = nextMessage(s);
      s.send(text, 9053, lab.edgeAddress);
      const m = await got;
      assert.equal(m.msg.toString(), `re:${text}`);
      assert.equal(m.address, lab.edgeAddress, 'the reply comes from the public address');
      assert.equal(m.port, 9053, 'and from the public port');
    }
    assert.deepEqual(senders, [
      `${lab.clientAddress}:${a.address().port}`,
      `${lab.clientAddress}:${b.address().port}`,
      `${lab.clientAddress}:${a.address().port}`,
    ]);
    assert.equal(mgr.activeFlows('udp', 9053), 2);
    // Idle flows end (idleMs 500 here), and a new datagram opens a new one.
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(mgr.activeFlows('udp', 9053), 0);
    const got = nextMessage(a);
    a.send('four', 9053, lab.edgeAddress);
    assert.equal((await got).msg.toString(), 're:four');
  });

  it("relays over IPv6 to the peer's IPv6 address on a dual-stack listener", async () => {
    const v6 = new ForwardManager({ listenAddress: '::', listenNetnsFd: lab.edge.fd, natNetnsFd: lab.nat.fd });
    closers.push(() => v6.closeAll());
    const seen: string[] = [];
    const srv = await lab.cageTcpServer(8086, 6, (c) => {
      seen.push(String(c.remoteAddress));
      c.end('hi6');
    });
    closers.push(() => srv.close());
    await v6.open(target('tcp', 9086, 8086));
    const c = lab.connect(9086, lab.edgeAddress6);
    assert.equal((await readAll(c)).toString(), 'hi6');
    assert.deepEqual(seen, ['2001:db8:5::2']);
  });

  it('refuses a port another program holds with ForwardBindError (EADDRINUSE)', async () => {
    const squatter = await lab.edgeSquatter(9090);
    closers.push(() => squatter.close());
    await assert.rejects(
      mgr.open(target('tcp', 9090, 80)),
      (e: Error) => e instanceof ForwardBindError && e.code === 'EADDRINUSE' && /another program holds it/.test(e.message),
    );
    assert.equal(mgr.isOpen('tcp', 9090), false);
  });

  it('refuses connections while there is no NAT namespace', async () => {
    const none = new ForwardManager({ listenNetnsFd: lab.edge.fd });
    closers.push(() => none.closeAll());
    await none.open(target('tcp', 9091, 80));
    const c = lab.connect(9091);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => c.once('error', resolve));
    assert.equal(err.code, 'ECONNRESET');
  });
});
