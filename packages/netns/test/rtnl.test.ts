import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, readlinkSync } from 'node:fs';
import { IFA_F_NODAD, NetnsError, Rtnl, createNetns } from '../src/index.js';
import { O_CLOEXEC, fdFlags, inNetns, netnsOfEveryThread } from './lab.js';

interface IpAddr {
  ifname: string;
  mtu: number;
  flags: string[];
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  dev: string;
  gateway?: string;
}

describe('createNetns', () => {
  it('returns a close-on-exec fd of a new namespace and moves no thread', () => {
    const before = netnsOfEveryThread();
    const fd = createNetns();
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      assert.match(target, /^net:\[\d+\]$/);
      assert.notEqual(target, readlinkSync('/proc/self/ns/net'));
      assert.equal(fstatSync(fd).ino, Number(/\d+/.exec(target)?.[0]));
      assert.ok(fdFlags(fd) & O_CLOEXEC);
      assert.deepEqual(new Set(netnsOfEveryThread()), new Set(before));
      assert.ok(new Set(before).size === 1, 'all of our threads stay in one namespace');
    } finally {
      closeSync(fd);
    }
  });

  it('gives distinct namespaces on each call', () => {
    const a = createNetns();
    const b = createNetns();
    try {
      assert.notEqual(fstatSync(a).ino, fstatSync(b).ino);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});

describe('Rtnl in a fresh namespace', function () {
  let fd: number;
  let nl: Rtnl;
  const threadsBefore = netnsOfEveryThread();

  before(() => {
    fd = createNetns();
    nl = Rtnl.open(fd);
    // Lab setup only: a veth pair created inside the namespace, so there is a real link besides lo.
    inNetns(fd, 'ip', 'link', 'add', 'wcta', 'type', 'veth', 'peer', 'name', 'wctb');
  });

  after(() => {
    nl?.close();
    if (fd !== undefined) closeSync(fd); // the namespace and its veths vanish with the last reference
  });

  it('sees only lo and the lab links, and agrees with ip', () => {
    const links = nl.links();
    assert.deepEqual(links.map((l) => l.name).sort(), ['lo', 'wcta', 'wctb']);
    const lo = nl.link('lo');
    assert.equal(lo.index, 1);
    assert.equal(lo.up, false);
    assert.equal(nl.link('wcta').kind, 'veth');
    const ip = JSON.parse(inNetns(fd, 'ip', '-j', 'link', 'show')) as { ifindex: number; ifname: string; mtu: number }[];
    assert.deepEqual(ip.map((l) => [l.ifindex, l.ifname, l.mtu]).sort(), links.map((l) => [l.index, l.name, l.mtu]).sort());
  });

  it('brings links up and sets the MTU', () => {
    nl.setUp('lo');
    nl.setUp('wcta');
    nl.setUp('wctb');
    nl.setMtu('wcta', 1420);
    assert.equal(nl.link('lo').up, true);
    assert.equal(nl.link('wcta').mtu, 1420);
    const ip = JSON.parse(inNetns(fd, 'ip', '-j', 'link', 'show', 'wcta')) as IpAddr[];
    assert.equal(ip[0]!.mtu, 1420);
    assert.ok(ip[0]!.flags.includes('UP'));
    nl.setUp('wctb', false);
    assert.equal(nl.link('wctb').up, false);
    nl.setUp('wctb');
  });

  it('brings a link up without an IPv6 link-local address or route when asked', () => {
    inNetns(fd, 'ip', 'link', 'add', 'wctc', 'type', 'veth', 'peer', 'name', 'wctd');
    nl.disableIpv6LinkLocal('wctc');
    nl.setUp('wctc');
    nl.setUp('wctd');
    const linkLocal = (ifname: string) => nl.addresses(ifname).some((a) => a.family === 6 && a.address.startsWith('fe80:'));
    // The control end gets its link-local address as the carrier comes up; wait for it (bounded).
    const deadline = Date.now() + 2000;
    while (!linkLocal('wctd') && Date.now() < deadline) execFileSync('sleep', ['0.02']);
    assert.ok(linkLocal('wctd'), 'the kernel gives the other end a link-local address');
    assert.equal(linkLocal('wctc'), false);
    assert.ok(!nl.routes().some((r) => r.dev === nl.link('wctc').index && r.family === 6));
    nl.deleteLink('wctc');
  });

  it('adds v4 and v6 addresses; v6 without DAD, usable at once', () => {
    nl.addAddress('wcta', '10.77.0.2/24');
    nl.addAddress('wcta', 'fd77::2/64');
    const mine = nl.addresses('wcta').map((a) => `${a.address}/${a.prefixLen}`);
    assert.ok(mine.includes('10.77.0.2/24'));
    assert.ok(mine.includes('fd77::2/64'));
    const v6 = nl.addresses('wcta').find((a) => a.address === 'fd77::2');
    assert.ok(v6 && v6.flags & IFA_F_NODAD);
    const ip = JSON.parse(inNetns(fd, 'ip', '-j', 'addr', 'show', 'dev', 'wcta')) as IpAddr[];
    const fromIp = ip[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
    assert.ok(fromIp.includes('10.77.0.2/24') && fromIp.includes('fd77::2/64'));
    // No "tentative" state (unlike the kernel's own link-local address): usable immediately.
    const line = inNetns(fd, 'ip', '-o', '-6', 'addr', 'show', 'dev', 'wcta')
      .split('\n')
      .find((l) => l.includes('fd77::2/64'));
    assert.match(line ?? '', /nodad/);
    assert.doesNotMatch(line ?? '', /tentative/);
  });

  it('adds default routes via a device and a route via a gateway', () => {
    nl.addRoute({ to: '0.0.0.0/0', dev: 'wcta' });
    nl.addRoute({ to: '::/0', dev: 'wcta' });
    nl.addRoute({ to: '10.88.0.0/16', via: '10.77.0.1', dev: 'wcta', metric: 50 });
    const routes = nl.routes();
    const wcta = nl.link('wcta').index;
    assert.ok(routes.some((r) => r.to === '0.0.0.0/0' && r.dev === wcta && r.via === null));
    assert.ok(routes.some((r) => r.to === '::/0' && r.dev === wcta));
    assert.ok(routes.some((r) => r.to === '10.88.0.0/16' && r.via === '10.77.0.1' && r.metric === 50));
    const ip4 = JSON.parse(inNetns(fd, 'ip', '-j', '-4', 'route', 'show')) as IpRoute[];
    assert.ok(ip4.some((r) => r.dst === 'default' && r.dev === 'wcta'));
    assert.ok(ip4.some((r) => r.dst === '10.88.0.0/16' && r.gateway === '10.77.0.1'));
    const ip6 = JSON.parse(inNetns(fd, 'ip', '-j', '-6', 'route', 'show')) as IpRoute[];
    assert.ok(ip6.some((r) => r.dst === 'default' && r.dev === 'wcta'));
    // The kernel resolves the route we made: a lookup picks our device.
    assert.match(inNetns(fd, 'ip', 'route', 'get', '192.0.2.1'), /dev wcta/);
    assert.match(inNetns(fd, 'ip', '-6', 'route', 'get', '2001:db8::1'), /dev wcta/);
    assert.ok(
      nl.routes('all').some((r) => r.type === 2),
      'the local table is included with "all"',
    );
  });

  it('reports kernel refusals as typed errors with the kernel reason', () => {
    assert.throws(
      () => nl.addAddress('wcta', '10.77.0.2/24'),
      (err: unknown) => {
        assert.ok(err instanceof NetnsError);
        assert.equal(err.code, 'EEXIST');
        assert.equal(err.errno, 17);
        assert.equal(err.syscall, 'RTM_NEWADDR');
        assert.match(err.message, /^adding 10\.77\.0\.2\/24 to wcta: RTM_NEWADDR failed: EEXIST/);
        return true;
      },
    );
    assert.throws(() => nl.setMtu(9999, 1400), { code: 'ENODEV', syscall: 'RTM_NEWLINK' });
    assert.throws(() => nl.setMtu('wcta', 20), { name: 'NetnsError', code: 'EINVAL' });
    assert.throws(() => nl.addRoute({ to: '10.1.0.0/16', via: 'fd00::1' }), TypeError);
    assert.throws(() => nl.link('nope0'), /no network interface "nope0"/);
  });

  it('deletes links', () => {
    nl.deleteLink('wctb'); // takes its veth peer with it
    assert.deepEqual(
      nl.links().map((l) => l.name),
      ['lo'],
    );
  });

  it('left every thread of this process where it was', () => {
    assert.deepEqual(
      netnsOfEveryThread().filter((n) => n !== threadsBefore[0]),
      [],
    );
  });
});

describe('Rtnl without a namespace fd', () => {
  it('reads the namespace of the calling thread', () => {
    const nl = Rtnl.open();
    try {
      const ip = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
      assert.deepEqual(
        nl
          .links()
          .map((l) => l.name)
          .sort(),
        ip.map((l) => l.ifname).sort(),
      );
    } finally {
      nl.close();
    }
  });

  it('refuses use after close', () => {
    const nl = Rtnl.open();
    nl.close();
    assert.throws(() => nl.links(), /already closed/);
  });
});
