// wirecagesrv's DNS forwarder end to end: a cage (`wirecage add-server` +
// `wirecage run NAME`) behind `wirecagesrv up`, and an "internet" namespace
// with a web server and an upstream resolver (dns-upstream.mjs, UDP and TCP)
// on the lab's addresses (tests/lib/srv-lab.ts; its LAN is not used here).
// The server's upstreams are, in order, a port that never answers and the
// resolver over IPv6, so the first query also proves the fail-over. Nothing leaves the lab's namespaces: the server is given its
// upstreams, it never reads the machine's resolv.conf for them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run, type ExecResult } from '../lib/exec.js';
import { startFixture } from '../lib/cage.js';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import {
  GATEWAY4 as GW4,
  GATEWAY6 as GW6,
  INET4,
  INET6,
  addServer,
  runCaged,
  srvLab,
  startWirecagesrv,
  type SrvLab,
} from '../lib/srv-lab.js';
import { startInternet } from '../lib/srv-internet.js';
import { waitFor } from '../lib/wait.js';

const UPSTREAM = fileURLToPath(new URL('./fixtures/dns-upstream.mjs', import.meta.url));
const BURST = fileURLToPath(new URL('./fixtures/dns-burst.mjs', import.meta.url));

const SILENT_PORT = 5353;
/** The forwarder's limit of queries in flight per peer (DNS_MAX_IN_FLIGHT_PER_PEER). */
const PER_PEER = 128;

describe('wirecagesrv DNS forwarder', function () {
  this.timeout(180_000);
  const lab = new Lab();
  after(() => lab.teardown());

  let l: SrvLab;
  let server: LabProcess;
  let upstream: LabProcess;

  const caged = (script: string, timeoutMs = 60_000): Promise<ExecResult> => runCaged(l, ['sh', '-c', script], { timeoutMs });
  const ok = (r: ExecResult) => assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${server.describe()}`);

  /** Stage 2 of the server: the node process in the server namespace running stage2/main.js. */
  const stage2Pid = async (): Promise<number> => {
    const pids = (await run('ip', ['netns', 'pids', l.srv.name])).stdout
      .split('\n')
      .filter((p) => p.trim() !== '')
      .map(Number);
    const pid = pids.find((p) => {
      try {
        return readlinkSync(`/proc/${p}/exe`) === process.execPath && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('stage2/main.js');
      } catch {
        return false;
      }
    });
    if (pid === undefined) throw new Error(`no stage 2 process in ${l.srv.name}\n${server.describe()}`);
    return pid;
  };
  const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

  before(async () => {
    l = await srvLab(lab, { built: ['apps/wirecagesrv/dist/nat/dns-forwarder.js'] });
    await startInternet(l.inet, '::');
    upstream = await startFixture(l.inet, UPSTREAM, ['::', String(SILENT_PORT), `web.lab=${INET4},${INET6}`]);
    server = await startWirecagesrv(l, ['--dns-upstream', `${INET4}:${SILENT_PORT}`, '--dns-upstream', `[${INET6}]:53`]);
    assert.match(
      server.output(),
      new RegExp(`DNS forwarder on ${GW4}:53 and \\[${GW6}\\]:53 \\(UDP, TCP\\), upstream ${INET4}:${SILENT_PORT}, \\[${INET6}\\]:53`),
    );
    await addServer(l, 'lab');
  });

  it("is the cage's resolver: a lab name resolves through the gateways (after failing over) and is fetched over IPv4 and IPv6", async () => {
    const r = await caged(
      'grep ^nameserver /etc/resolv.conf; getent ahostsv4 web.lab | head -1; getent ahostsv6 web.lab | head -1; ' +
        'curl -sS -4 --max-time 10 http://web.lab:8080/hello; curl -sS -6 --max-time 10 http://web.lab:8080/hello',
    );
    ok(r);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(lines, [
      `nameserver ${GW4}`,
      `nameserver ${GW6}`,
      `${INET4} STREAM web.lab`,
      `${INET6} STREAM web.lab`,
      'hello 10.99.1.1',
      'hello fd7a:99:1::1',
    ]);
    // The silent upstream was asked first, timed out, and the forwarder moved on to the one that answers.
    assert.match(upstream.output(), /^silent (::ffff:)?10\.99\.1\.1$/m);
    assert.match(upstream.output(), /^query web\.lab 1 udp fd7a:99:1::1$/m, "queries come from the server's own address");
    assert.match(server.output(), new RegExp(`now asking \\[${INET6}\\]:53 first`));
  });

  it('answers on both gateways over UDP and TCP, passes NXDOMAIN and truncation through; TCP gets the whole answer', async () => {
    const dig = `dig +time=5 +tries=1`;
    const r = await caged(
      [
        `${dig} +short @${GW4} web.lab A`,
        `${dig} +short @${GW6} web.lab AAAA`,
        `${dig} +short +tcp @${GW4} web.lab A`,
        `${dig} +short +tcp @${GW6} web.lab AAAA`,
        `${dig} @${GW4} nothing.lab | grep -o 'status: [A-Z]*'`,
        // UDP alone: the answer does not fit, and comes back with the TC flag and no records.
        `${dig} +ignore +noedns @${GW4} big.lab | grep -E -o 'flags: [a-z ]*;|ANSWER: [0-9]+'`,
        // dig's default: it sees TC and asks again over TCP, through the forwarder's TCP listener.
        `${dig} +short +noedns @${GW4} big.lab | grep -c '^10\\.98\\.0\\.'`,
      ].join('; '),
    );
    ok(r);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      INET4,
      INET6,
      INET4,
      INET6,
      'status: NXDOMAIN',
      'flags: qr aa tc rd;',
      'ANSWER: 0',
      '100',
    ]);
    assert.match(upstream.output(), /^query big\.lab 1 tcp fd7a:99:1::1$/m, 'the retry over TCP reached the upstream over TCP');
  });

  it('answers SERVFAIL when no upstream answers, and keeps answering other queries meanwhile', async () => {
    const ms = (start: string) => `$(( ($(date +%s%N) - ${start}) / 1000000 ))`;
    const r = await caged(
      `t0=$(date +%s%N); (dig +time=10 +tries=1 @${GW4} silent.lab | grep -o 'status: [A-Z]*'; echo "servfail after ${ms('$t0')}") & ` +
        `t1=$(date +%s%N); dig +time=2 +tries=1 +short @${GW4} web.lab; echo "answer after ${ms('$t1')}"; wait`,
    );
    ok(r);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], INET4, 'a query sent while another waits for its upstreams is answered');
    assert.ok(Number(lines[1]!.split(' ')[2]) < 1_500, lines[1]);
    assert.equal(lines[2], 'status: SERVFAIL');
    // Two upstreams, 3 s each: SERVFAIL after about 6 s, well before the client's own 10 s.
    const after = Number(lines[3]!.split(' ')[2]);
    assert.ok(after >= 5_500 && after < 9_000, lines[3]);
  });

  it('leaves no socket behind after 500 queries, and bounds the sockets of queries in flight', async () => {
    const pid = await stage2Pid();
    // Warm: one query through every path first, so lazily opened handles are in the baseline.
    ok(await caged(`dig +short @${GW4} web.lab >/dev/null`));
    const before = fdCount(pid);
    const r = await caged(
      `${process.execPath} ${BURST} ${GW4} web.lab 500 1 3000; ${process.execPath} ${BURST} ${GW6} web.lab 500 20 3000; ` +
        `for i in $(seq 20); do dig +short +tcp +time=3 @${GW4} web.lab; done | sort | uniq -c | tr -s ' '`,
    );
    ok(r);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'sent 500 answered 500 servfail 0 other 0 timeout 0',
      'sent 500 answered 500 servfail 0 other 0 timeout 0',
      ` 20 ${INET4}`,
    ]);
    // TCP connections close when the client does; the answers have all been delivered by now.
    await waitFor(() => fdCount(pid) <= before + 2, {
      what: `stage 2's fds back to ${before} (+2)`,
      timeoutMs: 5_000,
      describe: () => `fds: ${fdCount(pid)}`,
    });

    // 300 queries at once that no upstream answers: 128 wait for their upstreams (one socket
    // each), the rest get SERVFAIL at once instead of piling up sockets.
    let peak = 0;
    let done = false;
    const burst = caged(`${process.execPath} ${BURST} ${GW4} silent.lab 300 300 10000 2`).finally(() => (done = true));
    while (!done) {
      peak = Math.max(peak, fdCount(pid));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const b = await burst;
    ok(b);
    assert.equal(b.stdout.trim(), 'sent 300 answered 0 servfail 300 other 0 timeout 0');
    assert.ok(peak > before + PER_PEER / 2, `the queries in flight held their sockets (peak ${peak}, baseline ${before})`);
    assert.ok(peak <= before + PER_PEER + 4, `at most ${PER_PEER} upstream sockets at once (peak ${peak}, baseline ${before})`);
    await waitFor(() => fdCount(pid) <= before + 2, {
      what: `stage 2's fds back to ${before} (+2)`,
      timeoutMs: 5_000,
      describe: () => `fds: ${fdCount(pid)}`,
    });
  });

  it('reports its counters when the server stops', async () => {
    const exit = await server.stop();
    assert.equal(exit.code, 0, server.describe());
    const line =
      /DNS: (\d+) UDP queries \((\d+) answered, (\d+) SERVFAIL\), (\d+) TCP connection\(s\) \(0 failed\); upstream timeouts (\d+), errors 0; refused by the limits (\d+)/.exec(
        server.output(),
      );
    assert.ok(line, server.describe());
    const [, , , servfail, tcp, , refused] = line.map(Number);
    assert.equal(refused, 300 - PER_PEER, 'refused by the limits');
    assert.equal(servfail, 301, 'SERVFAIL: one alone, then the burst of 300');
    assert.equal(tcp, 23, 'TCP: two, a retry after truncation, then 20');
  });
});
