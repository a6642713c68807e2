import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { NetlinkMonitor, NetnsError, type NetlinkChange } from '../src/index.js';
import { Lab } from '../src/lab.js';
import { O_CLOEXEC, fdFlags, inNetns } from './lab.js';

/** A monitor whose wake-ups are collected, with a way to wait for the next one. */
function monitor(nsFd: number) {
  const changes: NetlinkChange[] = [];
  let wake: (() => void) | null = null;
  const m = NetlinkMonitor.open(
    (c) => {
      changes.push(c);
      wake?.();
    },
    { netnsFd: nsFd },
  );
  const next = (ms = 2000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no netlink notification within ${ms} ms`)), ms);
      wake = () => {
        wake = null;
        clearTimeout(timer);
        resolve();
      };
    });
  return { m, changes, next };
}

/** One turn of the event loop: a watcher with data waiting has been called by then. */
const turn = () => new Promise((r) => setImmediate(r));

describe('NetlinkMonitor', function () {
  const lab = new Lab();
  let made = 0;
  /** A lab namespace with lo up, as its fd. */
  const netns = (): number => lab.namespace(`m${made++}`).fd;
  after(() => lab.dispose());

  it('wakes on an address, a route and a link change in its namespace, and only there', async () => {
    const a = netns();
    const b = netns();
    const ma = monitor(a);
    const mb = monitor(b);
    try {
      inNetns(a, 'ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v0p');
      await ma.next();
      for (const change of [
        ['ip', 'link', 'set', 'v0', 'up'],
        ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'v0'],
        ['ip', 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.2'],
        ['ip', '-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'v0', 'nodad'],
        ['ip', 'route', 'del', '198.51.100.0/24'],
      ]) {
        const before = ma.changes.length;
        const woke = ma.next();
        inNetns(a, ...(change as [string, ...string[]]));
        await woke;
        assert.ok(ma.changes.length > before, change.join(' '));
      }
      // The kernel queues notifications before `ip` returns: b's socket would be readable by now.
      await turn();
      assert.equal(mb.changes.length, 0, "a's changes reached b's monitor");
      const woke = mb.next();
      inNetns(b, 'ip', 'link', 'add', 'v1', 'type', 'veth', 'peer', 'name', 'v1p');
      await woke;
      assert.ok(mb.changes[0]!.datagrams >= 1);
      assert.equal(mb.changes[0]!.overflowed, false);
    } finally {
      ma.m.close();
      mb.m.close();
    }
  });

  it('drains a burst in few wake-ups, then stays quiet', async () => {
    const a = netns();
    const ma = monitor(a);
    try {
      inNetns(a, 'ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v0p');
      await ma.next();
      const script = Array.from({ length: 50 }, (_, i) => `route add 203.0.113.${i}/32 dev v0`).join('\n');
      inNetns(a, 'ip', 'link', 'set', 'v0', 'up');
      const before = ma.changes.length;
      inNetns(a, 'sh', '-c', `printf '%s\\n' '${script.split('\n').join("' '")}' | ip -batch -`);
      await turn();
      await turn();
      const got = ma.changes.slice(before).reduce((n, c) => n + c.datagrams, 0);
      assert.ok(got >= 50, `${got} notifications read for 50 routes (and the link going up)`);
      // Everything was queued before `ip` returned: one drain reads it all.
      assert.ok(ma.changes.length - before <= 2, `${ma.changes.length - before} wake-ups for one burst`);
      const after = ma.changes.length;
      await turn();
      assert.equal(ma.changes.length, after, 'woke again with nothing new');
    } finally {
      ma.m.close();
    }
  });

  it('holds a close-on-exec fd that close() releases', () => {
    const m = NetlinkMonitor.open(() => {}, { netnsFd: netns() });
    const fd = (m as unknown as { fd: number }).fd;
    assert.ok(fdFlags(fd) & O_CLOEXEC);
    m.close();
    assert.equal(m.closed, true);
    m.close(); // twice is harmless
    assert.throws(() => fdFlags(fd), /ENOENT/);
  });

  it('names the failing call when the namespace fd is not a network namespace', () => {
    const notNs = openSync('/dev/null', 'r');
    try {
      assert.throws(
        () => NetlinkMonitor.open(() => {}, { netnsFd: notNs }),
        (err: unknown) => err instanceof NetnsError && err.syscall === 'setns' && err.code === 'EINVAL',
      );
    } finally {
      closeSync(notNs);
    }
  });
});
