import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { Doorbell, PacketRing, RingPump, slotBytesFor, Tun, UdpSocket } from '../src/index.js';
import { NetnsLab, waitFor } from './lab.js';
import { startWorker, workerBoot } from './workers.js';

const packageDir = new URL('..', import.meta.url).pathname;
const threadCount = (): number => readdirSync('/proc/self/task').length;

/**
 * Runs a script in a child process (an ES module with tsx, or plain CommonJS
 * when it only starts workers: workers inherit --input-type); a crash or a
 * hang fails the test instead of mocha.
 */
async function runChild(script: string, esm = true): Promise<string> {
  const args = esm ? ['--import', 'tsx', '--input-type=module', '-e', script] : ['-e', script];
  const { stdout } = await promisify(execFile)(process.execPath, args, {
    cwd: packageDir,
    encoding: 'utf8',
    timeout: 15_000,
  });
  return stdout;
}

describe('pump lifetimes', () => {
  let lab: NetnsLab;
  before(() => {
    lab = NetnsLab.create();
    lab.ip('link', 'set', 'lo', 'up');
  });
  after(() => lab?.destroy());

  it('does not keep the process alive: a process with running pumps exits by itself', async () => {
    const stdout = await runChild(`
      import { openSync } from 'node:fs';
      import { Doorbell, PacketRing, RingPump, UdpSocket } from './src/index.ts';
      const ring = PacketRing.create({ capacity: 64, slotBytes: 256 });
      const socket = UdpSocket.open({ family: 4, netnsFd: openSync('/run/netns/${lab.name}', 'r') });
      const pump = RingPump.udpReader(socket, ring, Doorbell.create());
      console.log(pump.running ? 'running' : 'not running');`);
    assert.equal(stdout.trim(), 'running');
  });

  it('joins the pumps of a worker that is terminated, without crashing the process', async () => {
    const boot = workerBoot('pump-worker.ts');
    const stdout = await runChild(
      `
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(${JSON.stringify(boot)}, { eval: true, workerData: { netnsPath: '/run/netns/${lab.name}' } });
      worker.once('message', async () => { await worker.terminate(); console.log('terminated'); });`,
      false,
    );
    assert.equal(stdout.trim(), 'terminated');
  });

  it('keeps pumping into a ring whose creating worker (and its pumps) ended', async () => {
    const worker = startWorker<never>('pump-worker.ts', { netnsPath: `/run/netns/${lab.name}` });
    const { ring: sab } = (await worker.ready) as { ring: SharedArrayBuffer };
    await worker.worker.terminate();
    const ring = PacketRing.wrap(sab);
    const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const sender = UdpSocket.open({ family: 4, address: '127.0.0.1', netnsFd: lab.fd });
    const reader = RingPump.udpReader(socket, ring, Doorbell.create());
    try {
      const before = ring.head;
      sender.sendTo(Uint8Array.of(1, 2, 3), 4, Uint8Array.of(127, 0, 0, 1), socket.port);
      await waitFor('the datagram in the ring', () => (ring.head === before + 1 ? true : undefined));
      assert.deepEqual([...ring.packet(before)], [1, 2, 3]);
    } finally {
      reader.stop();
      socket.close();
      sender.close();
    }
  });

  it('leaves no thread behind once its pumps are stopped', () => {
    const before = threadCount();
    const socket = UdpSocket.open({ family: 4, netnsFd: lab.fd });
    const ring = PacketRing.create({ capacity: 64, slotBytes: 256 });
    const tun = Tun.open({ name: `wctl${process.pid % 100000}`, netnsFd: lab.fd });
    const pumps = [
      RingPump.udpReader(socket, ring, Doorbell.create()),
      RingPump.tunReader({ tun }, PacketRing.create({ capacity: 4, slotBytes: slotBytesFor(tun.mtu) }), Doorbell.create()),
    ];
    assert.equal(threadCount(), before + 2);
    socket.close();
    tun.close();
    assert.ok(pumps.every((p) => !p.running));
    assert.equal(threadCount(), before);
  });
});
