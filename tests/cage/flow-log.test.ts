// `wirecage run --flow-log`: the cage's conntrack reports each flow the
// program opens through the tunnel (TCP, UDP, ICMP, DNS queries) with its
// 5-tuple, and its packets and bytes when it ends or at exit; each DNS
// answer comes with its name and addresses; nothing the
// program does on lo; the log is 0600, out of the program's reach, and `-`
// puts it on stderr.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nsRun } from '../lib/netns.js';
import { waitFor } from '../lib/wait.js';
import { WIRECAGE_BIN, cageKey, registerClient, serverPeer, startFixture, wirecage, writeWgQuick } from '../lib/cage.js';
import { cageSuite } from '../lib/cage-suite.js';
import type { LabProcess } from '../lib/process.js';
import { asUserArgs, assertUserReads, createTestUser } from '../lib/test-user.js';

const DNS_SERVER = fileURLToPath(new URL('./fixtures/dns-server.mjs', import.meta.url));
const HTTP_SERVER = fileURLToPath(new URL('./fixtures/http-server.mjs', import.meta.url));
const BODY = 'hello from the flow-log lab';

interface Line {
  time: string;
  event: 'new' | 'end' | 'lost' | 'dns';
  protocol: string;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  icmp?: { type: number; code: number; id: number };
  start?: string;
  toDst?: { packets: number; bytes: number };
  toSrc?: { packets: number; bytes: number };
  atExit?: boolean;
  server?: string;
  name?: string;
  type?: string;
  rcode?: string;
  addresses?: string[];
}

function parseLog(text: string): Line[] {
  assert.ok(text.endsWith('\n'), `the log does not end with a newline: ${JSON.stringify(text.slice(-80))}`);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => {
      const v = JSON.parse(l) as Line;
      assert.ok(!Number.isNaN(Date.parse(v.time)), `no ISO time in ${l}`);
      return v;
    });
}

describe('wirecage run --flow-log', function () {
  this.timeout(60_000);
  const t = cageSuite('flows');
  let dns: LabProcess;
  before(async () => {
    dns = await startFixture(t.srv.ns, DNS_SERVER, [t.srv.v4, `web.lab=${t.srv.v4}`, `six.lab=${t.srv.v6}`]);
    await startFixture(t.srv.ns, HTTP_SERVER, [t.srv.v4, '8080', BODY]);
  });

  it('logs a TCP fetch by name, its DNS query and answer and a UDP datagram with their 5-tuples and counts, and nothing on lo', async () => {
    const log = join(t.c.dir, 'flows.jsonl');
    // The UDP datagram leaves from a fixed port so its whole 5-tuple is known; loopback traffic (TCP
    // and ICMP) must not appear.
    const udp = `require('dgram').createSocket('udp4').bind(40123, function () { this.send('x', 9999, '${t.srv.v4}', () => this.close()); })`;
    const script = [
      `curl -sS --max-time 5 -o /dev/null -w '%{size_header} %{size_download}\\n' http://web.lab:8080/`,
      `${process.execPath} -e "${udp}"`,
      'ping -n -c1 -W1 127.0.0.1 >/dev/null',
      `${process.execPath} -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => require('net').connect(s.address().port, '127.0.0.1', function () { this.end(); s.close(); }))"`,
    ].join(' && ');
    const r = await wirecage(t.c.client, ['-c', t.conf, '--flow-log', log, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [header, body] = r.stdout.trim().split(' ').map(Number) as [number, number];
    assert.equal(body, BODY.length + 1); // the fixture adds a newline

    assert.equal((await stat(log)).mode & 0o777, 0o600);
    const all = parseLog(await readFile(log, 'utf8'));
    const answers = all.filter((l) => l.event === 'dns');
    assert.deepEqual(
      answers.filter((a) => a.type === 'A').map(({ server, name, rcode, addresses }) => ({ server, name, rcode, addresses })),
      [{ server: t.srv.v4, name: 'web.lab', rcode: 'NOERROR', addresses: [t.srv.v4] }],
      JSON.stringify(answers),
    );
    const lines = all.filter((l) => l.event !== 'dns');
    assert.deepEqual(
      lines.filter((l) => l.dst.startsWith('127.') || l.src.startsWith('127.')),
      [],
      'loopback flows were logged',
    );
    for (const l of lines) assert.equal(l.src, t.v4, `a flow not from the tunnel address: ${JSON.stringify(l)}`);

    const tcp = lines.filter((l) => l.protocol === 'tcp');
    assert.deepEqual(
      tcp.map((l) => [l.event, l.dst, l.dport]),
      [
        ['new', t.srv.v4, 8080],
        ['end', t.srv.v4, 8080],
      ],
      JSON.stringify(lines),
    );
    const [open, end] = tcp as [Line, Line];
    assert.equal(end.sport, open.sport);
    assert.equal(end.start, open.time);
    // TCP in TIME_WAIT outlives the command: its counts come from the table at exit.
    assert.equal(end.atExit, true);
    // Bytes are IP packet lengths: the HTTP answer plus 40 to 60 bytes of IP and TCP header per packet.
    const payload = header + body;
    assert.ok(end.toSrc, 'no counts on the TCP flow');
    assert.ok(
      end.toSrc.bytes >= payload + 40 * end.toSrc.packets && end.toSrc.bytes <= payload + 60 * end.toSrc.packets,
      JSON.stringify(end),
    );
    assert.ok(end.toDst!.packets >= 4 && end.toDst!.bytes > 40 * end.toDst!.packets, JSON.stringify(end));

    const sent = lines.filter((l) => l.protocol === 'udp' && l.dport === 9999);
    assert.deepEqual(
      sent.map((l) => ({ event: l.event, src: l.src, sport: l.sport, dst: l.dst })),
      [
        { event: 'new', src: t.v4, sport: 40123, dst: t.srv.v4 },
        { event: 'end', src: t.v4, sport: 40123, dst: t.srv.v4 },
      ],
    );
    // One 29-byte datagram (20 IP + 8 UDP + 1) out, nothing back (no one listens on 9999 but an ICMP error is not counted).
    assert.deepEqual(sent[1]!.toDst, { packets: 1, bytes: 29 });

    assert.match(dns.output(), /^query web\.lab 1$/m);
    const queries = lines.filter((l) => l.protocol === 'udp' && l.dport === 53 && l.event === 'new');
    assert.ok(queries.length >= 1, `no DNS flow in ${JSON.stringify(lines)}`);
    for (const q of queries) assert.equal(q.dst, t.srv.v4);
  });

  it('writes to stderr with -, ICMP with its type and id', async () => {
    const r = await wirecage(t.c.client, ['-c', t.conf, '--flow-log', '-', '--', 'ping', '-n', '-c1', '-W2', t.srv.v4]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /"event"/);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
    const icmp = lines.map((l) => JSON.parse(l) as Line).filter((l) => l.protocol === 'icmp');
    assert.deepEqual(
      icmp.map((l) => [l.event, l.src, l.dst, l.icmp?.type]),
      [
        ['new', t.v4, t.srv.v4, 8],
        ['end', t.v4, t.srv.v4, 8],
      ],
      r.stderr,
    );
    assert.deepEqual(icmp[1]!.toDst?.packets, 1);
    assert.deepEqual(icmp[1]!.toSrc?.packets, 1);
  });

  it('logs IPv6 flows and AAAA answers with their addresses in the short form', async () => {
    const key = await cageKey(t.c.dir, 'flows6');
    const six = t.srv.clientAddress(3);
    await registerClient(t.srv, key, [six.v4, six.v6]);
    const conf6 = await writeWgQuick(
      t.c.dir,
      'flows6.conf',
      { PrivateKey: key.privateKey, Address: `${six.v4}/32, ${six.v6}/128`, DNS: t.srv.v4 },
      [serverPeer(t.srv, { v6: true })],
    );
    const r = await wirecage(t.c.client, [
      '-c',
      conf6,
      '--flow-log',
      '-',
      '--',
      'sh',
      '-c',
      `ping -6 -n -c1 -W2 six.lab >/dev/null && curl -sS --max-time 5 -o /dev/null -6 http://[${t.srv.v6}]:8080/`,
    ]);
    // The lab's web server listens on IPv4 only: the TCP attempt is refused, but it is a flow all the same.
    assert.equal(r.code, 7, r.stdout + r.stderr);
    const lines = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
    const opened = lines.filter((l) => l.event === 'new').map((l) => [l.protocol, l.src, l.dst, l.dport ?? l.icmp?.type]);
    assert.deepEqual(
      opened.filter((o) => o[0] !== 'udp'),
      [
        ['icmpv6', six.v6, t.srv.v6, 128],
        ['tcp', six.v6, t.srv.v6, 8080],
      ],
      r.stderr,
    );
    const aaaa = lines.filter((l) => l.event === 'dns' && l.type === 'AAAA');
    assert.deepEqual(
      aaaa.map((l) => [l.name, l.rcode, l.addresses]),
      [['six.lab', 'NOERROR', [t.srv.v6]]],
      r.stderr,
    );
  });

  it("keeps the log out of the program's reach, even in a directory the cage shares", async () => {
    const shared = join(t.c.dir, 'shared');
    await mkdir(shared);
    const log = join(shared, 'flows.jsonl');
    await writeFile(log, '{"earlier":"run"}\n', { mode: 0o600 });
    await writeFile(join(shared, 'visible'), 'yes\n');
    // The program sees the shared directory (proving the probe looks in the right place), but at
    // the log's path it finds /dev/null: what it appends or truncates there goes nowhere, it reads
    // nothing, and it cannot replace the file.
    const probe = [
      `cat ${shared}/visible`,
      `echo '{"forged":1}' >> ${log}`,
      `: > ${log}`,
      `(rm -f ${log} && echo replaced > ${log}) 2>/dev/null && echo replaced`,
      `grep -q earlier ${log} && echo read`,
      `ping -n -c1 -W2 ${t.srv.v4} >/dev/null && echo pinged`,
    ].join('; ');
    const r = await wirecage(t.c.client, ['-c', t.conf, '--share', shared, '--flow-log', log, '--', 'sh', '-c', probe]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'yes\npinged\n');
    const text = await readFile(log, 'utf8');
    assert.ok(text.startsWith('{"earlier":"run"}\n'), 'the earlier content is gone');
    assert.doesNotMatch(text, /forged|replaced/);
    assert.ok(parseLog(text.slice('{"earlier":"run"}\n'.length)).some((l) => l.protocol === 'icmp' && l.dst === t.srv.v4));
  });

  it("logs what a command exec'd into a named cage contacts", async () => {
    const xdg = join(t.c.dir, 'xdg');
    await mkdir(xdg, { mode: 0o700 });
    const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
    const log = join(t.c.dir, 'named.jsonl');
    const first = t.c.client.spawn(
      process.execPath,
      [WIRECAGE_BIN, 'run', '-c', t.conf, '--name', 'flows', '--flow-log', log, '--', 'sleep', '600'],
      { env },
    );
    await waitFor(
      () => {
        first.assertRunning();
        return existsSync(join(xdg, 'wirecage', 'flows.ctl'));
      },
      { what: 'the named cage to start', timeoutMs: 20_000, describe: () => first.describe() },
    );
    const cli = (...args: string[]) => nsRun(t.c.client, process.execPath, [WIRECAGE_BIN, ...args], { env, timeoutMs: 30_000 });
    const r = await cli('exec', 'flows', '--', 'ping', '-n', '-c1', '-W2', t.srv.v4);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await cli('stop', 'flows', '--timeout', '1')).code, 0);
    await first.exited;
    const icmp = parseLog(await readFile(log, 'utf8')).filter((l) => l.protocol === 'icmp');
    assert.deepEqual(
      icmp.map((l) => [l.event, l.src, l.dst]),
      [
        ['new', t.v4, t.srv.v4],
        ['end', t.v4, t.srv.v4],
      ],
    );
  });

  it('ps NAME --flows shows a long-lived TCP connection with its 5-tuple while it is open, to its owner only', async () => {
    const xdg = join(t.c.dir, 'xdg-flows');
    await mkdir(xdg, { mode: 0o700 });
    const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
    const ctl = join(xdg, 'wirecage', 'live.ctl');
    const cli = (...args: string[]) => nsRun(t.c.client, process.execPath, [WIRECAGE_BIN, ...args], { env, timeoutMs: 30_000 });
    // A server that answers a line with 1000 bytes and keeps the connection open; the cage's
    // command connects from a fixed port, so the whole 5-tuple is known.
    const serve = `require('net').createServer((s) => s.once('data', () => s.write('x'.repeat(1000)))).listen(8081, '${t.srv.v4}', () => console.log('listening'))`;
    await startFixture(t.srv.ns, '-e', [serve]);
    const client = `const s = require('net').connect({ host: '${t.srv.v4}', port: 8081, localPort: 40124 }, () => s.write('hello\\n')); let n = 0; s.on('data', (d) => { n += d.length; if (n === 1000) console.log('ready'); });`;
    const first = t.c.client.spawn(
      process.execPath,
      [
        WIRECAGE_BIN,
        'run',
        '-c',
        t.conf,
        '--name',
        'live',
        '--flow-log',
        join(t.c.dir, 'live.jsonl'),
        '--',
        process.execPath,
        '-e',
        client,
      ],
      { env },
    );
    try {
      await waitFor(
        () => {
          first.assertRunning();
          return first.output().includes('ready') && existsSync(ctl);
        },
        { what: 'the caged client to get its 1000 bytes', timeoutMs: 20_000, describe: () => first.describe() },
      );
      const r = await cli('ps', 'live', '--flows', '--json');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const flows = JSON.parse(r.stdout) as (Line & { state: string; age: number | null })[];
      const tcp = flows.filter((f) => f.protocol === 'tcp');
      assert.deepEqual(
        tcp.map(({ src, sport, dst, dport, state }) => ({ src, sport, dst, dport, state })),
        [{ src: t.v4, sport: 40124, dst: t.srv.v4, dport: 8081, state: 'established' }],
        r.stdout,
      );
      // The 1000 bytes and their headers came back; "hello\n" and the handshake went out.
      const [live] = tcp as [(typeof tcp)[number]];
      assert.ok(live.toSrc && live.toSrc.bytes >= 1000 + 40 * live.toSrc.packets, JSON.stringify(live));
      assert.ok(live.toDst && live.toDst.packets >= 3, JSON.stringify(live));
      assert.ok(typeof live.age === 'number' && live.age >= 0 && live.age < 60, JSON.stringify(live));
      assert.deepEqual(
        flows.filter((f) => f.src.startsWith('127.')),
        [],
      );

      const table = await cli('ps', 'live', '--flows');
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^PROTO\s+SOURCE\s+DESTINATION\s+STATE\s+OUT\s+IN\s+AGE$/m);
      assert.match(
        table.stdout,
        new RegExp(`^tcp\\s+${t.v4.replaceAll('.', '\\.')}:40124\\s+${t.srv.v4.replaceAll('.', '\\.')}:8081\\s+established\\s`, 'm'),
        table.stdout,
      );

      // Another user, with the modes opened as a careless setup would: the socket's peer check refuses it.
      const user = await createTestUser(t.c.lab, `${t.c.lab.id}f`);
      await assertUserReads(t.c.client, user, WIRECAGE_BIN);
      const dirs = [t.c.dir, xdg, join(xdg, 'wirecage')];
      await Promise.all(dirs.map((d) => chmod(d, 0o711)));
      await chmod(ctl, 0o666);
      try {
        const other = await nsRun(
          t.c.client,
          asUserArgs(user)[0]!,
          [...asUserArgs(user).slice(1), process.execPath, WIRECAGE_BIN, 'ps', 'live', '--flows', '--json'],
          { env, timeoutMs: 30_000 },
        );
        assert.equal(other.code, 1, other.stdout + other.stderr);
        assert.match(other.stderr, /live: refused: only the user who started this cage/);
        assert.doesNotMatch(other.stdout, /40124/);
      } finally {
        await Promise.all([...dirs.map((d) => chmod(d, 0o700)), chmod(ctl, 0o600)]);
      }
    } finally {
      await cli('stop', 'live', '--timeout', '1');
      await first.exited;
    }
  });

  it('ps NAME --flows on a cage started without --flow-log says how to get them', async () => {
    const xdg = join(t.c.dir, 'xdg-noflows');
    await mkdir(xdg, { mode: 0o700 });
    const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
    const cli = (...args: string[]) => nsRun(t.c.client, process.execPath, [WIRECAGE_BIN, ...args], { env, timeoutMs: 30_000 });
    const first = t.c.client.spawn(process.execPath, [WIRECAGE_BIN, 'run', '-c', t.conf, '--name', 'quiet', '--', 'sleep', '600'], { env });
    try {
      await waitFor(
        () => {
          first.assertRunning();
          return existsSync(join(xdg, 'wirecage', 'quiet.ctl'));
        },
        { what: 'the named cage to start', timeoutMs: 20_000, describe: () => first.describe() },
      );
      const r = await cli('ps', 'quiet', '--flows');
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /quiet: the cage quiet tracks no flows: start it with --flow-log/);
      const noName = await cli('ps', '--flows');
      assert.equal(noName.code, 2, noName.stderr);
      assert.match(noName.stderr, /--flows needs a cage NAME/);
    } finally {
      await cli('stop', 'quiet', '--timeout', '1');
      await first.exited;
    }
  });

  it('refuses a log path that is a symbolic link, before the cage starts (exit 125)', async () => {
    const target = join(t.c.dir, 'elsewhere');
    const link = join(t.c.dir, 'link.jsonl');
    await symlink(target, link);
    const r = await wirecage(t.c.client, ['-c', t.conf, '--flow-log', link, '--', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /--flow-log .*link\.jsonl: cannot open: it is a symbolic link/);
    await assert.rejects(lstat(target), { code: 'ENOENT' });
  });
});
