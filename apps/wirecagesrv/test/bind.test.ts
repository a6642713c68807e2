import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { bindSocket, socketAddress, socketInNetns } from '@wirecage/netns';
import { bindServerSockets, bindWireGuard, closeBound } from '../src/stage2/bind.js';

// Stage 1's WireGuard sockets, on loopback: one per data-plane shard, in one SO_REUSEPORT group
// when several, so each shard reads its own and the kernel keeps a peer on one.

/** Binds 127.0.0.1:port with SO_REUSEPORT as this process (the group's uid): null when it joined, else the errno. */
function join(port: number): string | null {
  const fd = socketInNetns(null, 4, 'udp', { reusePort: true });
  try {
    bindSocket(fd, '127.0.0.1', port);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  } finally {
    closeSync(fd);
  }
}

describe('bindWireGuard: the WireGuard port for the data plane', () => {
  it('binds one socket per shard on one port, a group the same user may join', () => {
    const group = bindWireGuard({ host: '127.0.0.1', port: 0 }, 3);
    try {
      assert.equal(group.length, 3);
      const ports = group.map((fd) => socketAddress(fd).port);
      assert.ok(ports[0]! > 0);
      assert.deepEqual(ports, [ports[0], ports[0], ports[0]]);
      assert.equal(join(ports[0]!), null);
    } finally {
      closeBound({ wg: group });
    }
  });

  it('binds a single socket without SO_REUSEPORT: no one joins it', () => {
    const [fd, ...rest] = bindWireGuard({ host: '127.0.0.1', port: 0 });
    try {
      assert.equal(rest.length, 0);
      assert.equal(join(socketAddress(fd!).port), 'EADDRINUSE');
    } finally {
      closeSync(fd!);
    }
  });

  it('refuses a port held by a socket outside the group, and a count below one', () => {
    const squatter = socketInNetns(null, 4, 'udp');
    try {
      bindSocket(squatter, '127.0.0.1', 0);
      const port = socketAddress(squatter).port;
      assert.throws(
        () => bindWireGuard({ host: '127.0.0.1', port }, 2),
        /^Error: WireGuard cannot listen on udp 127\.0\.0\.1:\d+: .*EADDRINUSE/,
      );
    } finally {
      closeSync(squatter);
    }
    assert.throws(() => bindWireGuard({ host: '127.0.0.1', port: 0 }, 0), /the socket count must be a positive integer, got 0/);
  });

  it('closes the whole group again when the API cannot listen', () => {
    const api = socketInNetns(null, 4, 'tcp');
    let wgPort = 0;
    try {
      bindSocket(api, '127.0.0.1', 0);
      const apiPort = socketAddress(api).port;
      // The API's port is taken (bound, not listening: still refused), so the group must go.
      const group = bindWireGuard({ host: '127.0.0.1', port: 0 }, 2);
      wgPort = socketAddress(group[0]!).port;
      closeBound({ wg: group });
      assert.throws(
        () => bindServerSockets({ host: '127.0.0.1', port: wgPort }, { host: '127.0.0.1', port: apiPort }, 2),
        /the API cannot listen/,
      );
    } finally {
      closeSync(api);
    }
    // Free again: a socket without SO_REUSEPORT binds it.
    const probe = socketInNetns(null, 4, 'udp');
    try {
      bindSocket(probe, '127.0.0.1', wgPort);
    } finally {
      closeSync(probe);
    }
  });
});
