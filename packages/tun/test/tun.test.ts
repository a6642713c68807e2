import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { Tun, TunError } from '../src/index.js';
import { fdFlags, hostLinkNames, NetnsLab, netnsOfEveryThread, O_CLOEXEC, O_NONBLOCK, waitFor } from './lab.js';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, icmpEcho, ipv4Packet, parseIcmpEcho, parseIpv4, type IcmpEcho } from './packets.js';

const TUN_ADDR = '198.18.0.1';
const PEER_ADDR = '198.18.0.2';

describe('Tun in a lab network namespace', () => {
  let lab: NetnsLab;
  let opened: Tun[] = [];
  let names = 0;

  const uniqueName = (): string => `wct${process.pid % 100000}t${names++}`;
  const open = (extra: Partial<Parameters<typeof Tun.open>[0]> = {}): Tun => {
    const tun = Tun.open({ name: uniqueName(), netnsFd: lab.fd, ...extra });
    opened.push(tun);
    return tun;
  };
  const addressed = (tun: Tun): Tun => {
    lab.ip('link', 'set', tun.name, 'up');
    lab.ip('addr', 'add', `${TUN_ADDR}/24`, 'dev', tun.name);
    return tun;
  };
  /** Every ICMP echo message the TUN delivers, with the queue it came on. */
  const collectEchoes = (tun: Tun): { echo: IcmpEcho; ip: ReturnType<typeof parseIpv4>; queue: number; length: number }[] => {
    const seen: { echo: IcmpEcho; ip: ReturnType<typeof parseIpv4>; queue: number; length: number }[] = [];
    tun.onPackets((packets, queue) => {
      for (const p of packets) {
        assert.ok(Buffer.isBuffer(p));
        const ip = parseIpv4(p);
        const echo = ip && parseIcmpEcho(ip);
        if (echo) seen.push({ echo, ip, queue, length: p.length });
      }
    });
    return seen;
  };
  const echoRequestToTun = (seq: number, data = Buffer.from('wirecage tun test')): Buffer =>
    ipv4Packet(PEER_ADDR, TUN_ADDR, 1, icmpEcho(ICMP_ECHO_REQUEST, 0x5754, seq, data));

  before(() => {
    lab = NetnsLab.create();
  });
  afterEach(() => {
    for (const tun of opened) tun.close();
    opened = [];
  });
  after(() => {
    for (const tun of opened) tun.close();
    lab?.destroy();
  });

  it('creates the interface inside the given namespace only, without moving a Node thread', () => {
    const ownNetns = readlinkSync('/proc/self/ns/net');
    const tun = open();
    const [link] = JSON.parse(lab.ip('-j', '-d', 'link', 'show', tun.name)) as {
      ifindex: number;
      mtu: number;
      linkinfo: { info_kind: string; info_data: { type: string; pi: boolean; multi_queue: boolean } };
    }[];
    assert.equal(link!.ifindex, tun.ifindex);
    assert.equal(link!.mtu, tun.mtu);
    assert.equal(link!.linkinfo.info_kind, 'tun');
    assert.equal(link!.linkinfo.info_data.type, 'tun');
    assert.equal(link!.linkinfo.info_data.pi, false);
    assert.ok(!hostLinkNames().includes(tun.name), 'the interface must not appear in the host namespace');
    assert.deepEqual(new Set(netnsOfEveryThread()), new Set([ownNetns]));
    assert.equal(tun.fds.length, 1);
    assert.equal(fdFlags(tun.fds[0]!) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
  });

  it('delivers the echo request the kernel sends when pinging through it', async () => {
    const tun = addressed(open());
    const seen = collectEchoes(tun);
    const ping = await lab.exec('ping', '-c1', '-W1', PEER_ADDR);
    assert.equal(ping.code, 1, 'nobody answers yet, so ping must fail');
    const request = await waitFor('the echo request', () => seen.find((s) => s.echo.type === ICMP_ECHO_REQUEST && s.ip!.dst === PEER_ADDR));
    assert.equal(request.ip!.src, TUN_ADDR);
    assert.ok(request.echo.checksumOk);
    const stats = tun.stats();
    assert.ok(stats.rxPackets >= 1 && stats.rxBatches >= 1 && stats.rxBytes >= request.length);
  });

  it('carries a reply written from the packet handler back to ping', async () => {
    const tun = addressed(open());
    tun.onPackets((packets) => {
      for (const p of packets) {
        const ip = parseIpv4(p);
        const echo = ip && parseIcmpEcho(ip);
        if (!echo || echo.type !== ICMP_ECHO_REQUEST) continue;
        assert.ok(tun.write(ipv4Packet(ip.dst, ip.src, 1, icmpEcho(ICMP_ECHO_REPLY, echo.id, echo.seq, echo.data))));
      }
    });
    const ping = await lab.exec('ping', '-c2', '-i0.2', '-W1', PEER_ADDR);
    assert.equal(ping.code, 0, ping.stdout);
    assert.match(ping.stdout, /2 received/);
    assert.equal(tun.stats().txPackets, 2);
  });

  it('gets an answer from the kernel to an echo request written to the TUN address', async () => {
    const tun = addressed(open());
    const seen = collectEchoes(tun);
    const data = Buffer.from('written by the test');
    const packet = echoRequestToTun(7, data);
    assert.equal(tun.write(packet), true);
    const reply = await waitFor('the kernel echo reply', () => seen.find((s) => s.echo.type === ICMP_ECHO_REPLY));
    assert.deepEqual([reply.ip!.src, reply.ip!.dst], [TUN_ADDR, PEER_ADDR]);
    assert.deepEqual([reply.echo.id, reply.echo.seq], [0x5754, 7]);
    assert.deepEqual(reply.echo.data, data);
    assert.ok(reply.echo.checksumOk);
    const stats = tun.stats();
    assert.equal(stats.txPackets, 1);
    assert.equal(stats.txBytes, packet.length);
  });

  it('refuses zero-length and oversized writes, counts them, and keeps writing', async () => {
    const tun = addressed(open({ mtu: 1400 }));
    assert.equal(tun.mtu, 1400);
    assert.equal((JSON.parse(lab.ip('-j', 'link', 'show', tun.name)) as { mtu: number }[])[0]!.mtu, 1400);
    assert.equal(tun.maxPacketSize, 1400);
    const seen = collectEchoes(tun);
    assert.equal(tun.write(Buffer.alloc(0)), false);
    assert.equal(tun.write(new Uint8Array(0)), false);
    assert.equal(tun.write(echoRequestToTun(1, Buffer.alloc(1401 - 28))), false);
    assert.equal(tun.write(Buffer.alloc(70000)), false);
    let stats = tun.stats();
    assert.deepEqual([stats.txRefused, stats.txPackets, stats.txErrors], [4, 0, 0]);
    const fullSize = echoRequestToTun(2, Buffer.alloc(1400 - 28, 0xab));
    assert.equal(fullSize.length, 1400);
    assert.equal(tun.write(fullSize), true);
    const reply = await waitFor('the reply to a full-MTU write', () => seen.find((s) => s.echo.seq === 2));
    assert.equal(reply.length, 1400);
    stats = tun.stats();
    assert.deepEqual([stats.txRefused, stats.txPackets], [4, 1]);
  });

  it('limits writes to 65535 bytes when no MTU is given', () => {
    const tun = open();
    assert.equal(tun.maxPacketSize, 65535);
    assert.equal(tun.write(Buffer.alloc(65536, 0x45)), false);
    assert.equal(tun.stats().txRefused, 1);
  });

  it('counts a packet the kernel rejects instead of throwing', () => {
    const tun = addressed(open());
    assert.equal(tun.write(Buffer.from([0x00, 0x01, 0x02, 0x03])), false);
    const stats = tun.stats();
    assert.equal(stats.txErrors, 1);
    assert.equal(stats.queues[0]!.lastTxError, 'EINVAL');
    assert.throws(() => tun.write('not bytes' as unknown as Uint8Array), TypeError);
  });

  it('opens several queues of one multi-queue interface and moves packets on each', async () => {
    const tun = addressed(open({ queues: 4 }));
    assert.equal(tun.queueCount, 4);
    assert.equal(new Set(tun.fds).size, 4);
    for (const fd of tun.fds) assert.equal(fdFlags(fd) & (O_NONBLOCK | O_CLOEXEC), O_NONBLOCK | O_CLOEXEC);
    const [link] = JSON.parse(lab.ip('-j', '-d', 'link', 'show', tun.name)) as {
      linkinfo: { info_data: { multi_queue: boolean; numqueues: number } };
    }[];
    assert.equal(link!.linkinfo.info_data.multi_queue, true);
    assert.equal(link!.linkinfo.info_data.numqueues, 4);
    const seen = collectEchoes(tun);
    for (let q = 0; q < 4; q++) assert.equal(tun.write(echoRequestToTun(100 + q), q), true);
    await waitFor('four replies', () => (seen.filter((s) => s.echo.type === ICMP_ECHO_REPLY).length === 4 ? true : undefined));
    assert.deepEqual(
      seen
        .filter((s) => s.echo.type === ICMP_ECHO_REPLY)
        .map((s) => s.echo.seq)
        .sort(),
      [100, 101, 102, 103],
    );
    assert.deepEqual(
      tun.stats().queues.map((q) => q.txPackets),
      [1, 1, 1, 1],
    );
    assert.throws(() => tun.write(echoRequestToTun(9), 4), RangeError);
  });

  it('removes the interface on close, and refuses use afterwards', () => {
    const tun = open({ queues: 2 });
    assert.ok(lab.linkNames().includes(tun.name));
    tun.close();
    assert.equal(tun.closed, true);
    assert.ok(!lab.linkNames().includes(tun.name));
    tun.close();
    assert.throws(
      () => tun.write(echoRequestToTun(1)),
      (err: unknown) => err instanceof TunError && err.code === 'EBADF',
    );
    assert.throws(
      () => tun.onPackets(() => {}),
      (err: unknown) => err instanceof TunError && err.code === 'EBADF',
    );
  });

  it('with deleteWithNetns, leaves the interface to its namespace on close (and needs one)', () => {
    const own = NetnsLab.create();
    try {
      const tun = Tun.open({ name: uniqueName(), netnsFd: own.fd, deleteWithNetns: true });
      tun.close();
      assert.equal(tun.closed, true);
      // Persistent: no fd holds it, the namespace does; the kernel deletes it when that ends.
      assert.ok(own.linkNames().includes(tun.name), own.linkNames().join(' '));
    } finally {
      own.destroy();
    }
    assert.throws(() => Tun.open({ name: uniqueName(), deleteWithNetns: true }), /deleteWithNetns needs netnsFd/);
  });

  it('can be closed from inside its own packet handler', async () => {
    const tun = addressed(open());
    let batches = 0;
    tun.onPackets(() => {
      batches++;
      tun.close();
    });
    tun.write(echoRequestToTun(1));
    await waitFor('the handler to close the TUN', () => (tun.closed ? true : undefined));
    assert.equal(batches, 1);
    assert.ok(!lab.linkNames().includes(tun.name));
  });

  it('refuses a name already taken in the namespace, and lets the kernel number "%d" names', () => {
    const first = open();
    assert.throws(
      () => open({ name: first.name }),
      (err: unknown) =>
        err instanceof TunError &&
        err.code === 'EBUSY' &&
        err.syscall === 'ioctl(TUNSETIFF)' &&
        err.message.includes(`'${first.name}' already exists`),
    );
    assert.ok(lab.linkNames().includes(first.name), 'the existing interface is untouched');
    const numbered = open({ name: 'wctn%d' });
    assert.match(numbered.name, /^wctn\d+$/);
    assert.ok(lab.linkNames().includes(numbered.name));
  });

  it('reports a read error through onError when the interface is deleted under it', async () => {
    const tun = open();
    const errors: [TunError, number][] = [];
    tun.onPackets(() => {});
    tun.onError((err, queue) => errors.push([err, queue]));
    lab.ip('link', 'del', tun.name);
    const [err, queue] = await waitFor('the read error', () => errors[0]);
    assert.ok(err instanceof TunError);
    assert.equal(err.code, 'EBADFD');
    assert.equal(err.syscall, 'read');
    assert.match(err.message, new RegExp(`^TUN '${tun.name}' queue 0: reading TUN queue fd \\d+: read failed: EBADFD`));
    assert.equal(queue, 0);
    assert.equal(tun.stats().rxErrors, 1);
  });
});

describe('Tun in a worker thread', () => {
  let lab: NetnsLab;
  before(() => {
    lab = NetnsLab.create();
  });
  after(() => lab?.destroy());

  it('survives the worker being terminated while reading, and the interface goes with it', async () => {
    // In a child process: a crash at worker teardown (a poll handle closed after
    // the addon is unloaded) must fail this test, not kill mocha.
    // Node 20 applies no --import hooks given in a Worker's execArgv
    // (nodejs/node#47747), so the worker boots through tsx's tsImport.
    const entry = new URL('./fixtures/worker-reader.ts', import.meta.url).href;
    const tsxApi = createRequire(import.meta.url).resolve('tsx/esm/api');
    const boot = `require(${JSON.stringify(tsxApi)}).tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)});`;
    const script = `
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(${JSON.stringify(boot)}, {
        eval: true,
        workerData: { netnsPath: '/run/netns/${lab.name}', name: 'wctworker' },
      });
      worker.once('message', async (name) => { console.log(name); await worker.terminate(); console.log('terminated'); });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.deepEqual(stdout.trim().split('\n'), ['wctworker', 'terminated']);
    assert.deepEqual(lab.linkNames(), ['lo']);
  });
});
