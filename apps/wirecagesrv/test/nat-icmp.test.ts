// The ping relay in a lab of namespaces (forwards-lab.ts): the cage pings
// through the "nat" namespace, whose steering rules are the NAT's own
// (natRuleset, the veth to the cage standing in for the TUN), and the relay's
// ping sockets go out from "edge" to the host in "inet".
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import { createLogger } from '@wirecage/wg-engine';
import { newCounters } from '../src/nat/counters.js';
import { IcmpRelay } from '../src/nat/icmp-relay.js';
import { FlowLimits } from '../src/nat/limits.js';
import { natRuleset } from '../src/nat/nft-rules.js';
import { EgressPolicy } from '../src/nat/policy.js';
import { ForwardLab, nftLoad } from './forwards-lab.js';

const run = promisify(execFile);
const IDLE_MS = 400;

describe('NAT ping relay', function () {
  this.timeout(30_000);
  let lab: ForwardLab;
  let relay: IcmpRelay;
  const counters = newCounters();
  const limits = new FlowLimits(16, 4);
  const logs: string[] = [];
  /** Sockets this process holds (ping's pipes come and go meanwhile). */
  const socketCount = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;

  /** `ping` in the cage namespace (asynchronously: the relay runs on this event loop): replies received. */
  async function ping(target: string, ...args: string[]): Promise<{ received: number; output: string }> {
    const r = await run('ip', ['netns', 'exec', lab.cage.name, 'ping', '-n', '-W', '1', ...args, target]).catch(
      (e: { stdout: string }) => e,
    );
    const received = /(\d+) received/.exec(r.stdout);
    assert.ok(received, r.stdout);
    return { received: Number(received[1]), output: r.stdout };
  }

  before(async () => {
    lab = await ForwardLab.create();
    nftLoad(
      lab.nat,
      natRuleset({ tunName: lab.natIfname, gateway4: lab.gateway4, gateway6: lab.gateway6, tcpPort: 1, udpPort: 1, steerEcho: true }),
    );
    const sysctl = await lab.edge.exec('sysctl', '-q', '-w', 'net.ipv4.ping_group_range=0 2147483647');
    assert.equal(sysctl.code, 0, sysctl.stderr);
    const ctx = {
      netnsFd: lab.nat.fd,
      policy: new EgressPolicy({ serverPools: ['10.200.100.0/24', 'fd00:ab::/64'] }),
      limits,
      counters,
      log: createLogger('debug', (l) => logs.push(l)),
    };
    relay = (await IcmpRelay.start(ctx, { gateways: [lab.gateway4, lab.gateway6], idleMs: IDLE_MS, hostNetnsFd: lab.edge.fd }))!;
    assert.ok(relay, logs.join('\n'));
  });

  after(async () => {
    relay?.close();
    await lab?.dispose();
  });

  it('relays IPv4 and IPv6 pings, and closes each flow with its socket when it idles', async () => {
    const sockets = socketCount();
    const [v4, v6] = await Promise.all([ping(lab.clientAddress, '-c', '2', '-i', '0.2'), ping(lab.clientAddress6, '-c', '2', '-i', '0.2')]);
    assert.equal(v4.received, 2, v4.output);
    assert.match(v4.output, /from 198\.51\.100\.2: icmp_seq=1 ttl=63/);
    assert.equal(v6.received, 2, v6.output);
    assert.equal(relay.active, 2);
    assert.equal(limits.active, 2);
    assert.equal(socketCount(), sockets + 2, 'one ping socket per flow');
    assert.deepEqual([counters.icmpFlows, counters.icmpEchoRequests, counters.icmpEchoReplies, counters.icmpDropped], [2, 4, 4, 0]);
    await new Promise((r) => setTimeout(r, IDLE_MS * 2));
    assert.equal(relay.active, 0);
    assert.equal(limits.active, 0);
    assert.equal(socketCount(), sockets, "the flows' sockets are closed");
  });

  it('answers the gateway itself; a refused destination gets nothing', async () => {
    const gw = await ping('10.200.100.1', '-c', '1');
    assert.equal(gw.received, 1, gw.output);
    assert.match(gw.output, /ttl=64/);
    assert.equal((await ping('fd00:ab::1', '-c', '1')).received, 1);
    const refused = counters.icmpRefusedByPolicy;
    assert.equal((await ping('169.254.169.254', '-c', '1')).received, 0);
    assert.equal(counters.icmpRefusedByPolicy, refused + 1);
  });

  it("turns itself off, saying why, when it cannot take echo over from the namespace's kernel", async () => {
    const notANetns = openSync('/dev/null', 'r');
    const warnings: string[] = [];
    try {
      const ctx = {
        netnsFd: notANetns,
        policy: new EgressPolicy(),
        limits,
        counters: newCounters(),
        log: createLogger('warn', (l) => warnings.push(l)),
      };
      assert.equal(await IcmpRelay.start(ctx, { gateways: ['10.200.100.1'] }), null);
    } finally {
      closeSync(notANetns);
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /pings through the NAT are off, only the gateway answers: .*setns/);
  });

  it('drops pings beyond the per-peer flow limit', async () => {
    for (let i = 0; i < 4; i++) assert.equal(limits.acquire(lab.peer4), null);
    try {
      assert.equal((await ping(lab.clientAddress, '-c', '1')).received, 0);
      assert.equal(counters.icmpRefusedByLimit, 1);
      assert.ok(logs.some((l) => /per-peer flow limit/.test(l)));
    } finally {
      for (let i = 0; i < 4; i++) limits.release(lab.peer4);
    }
    assert.equal((await ping(lab.clientAddress, '-c', '1')).received, 1);
  });
});
