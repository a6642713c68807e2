// `wirecage run` end to end: a command in the cage reaches lab servers by
// name, over IPv4 and IPv6, with a preshared key, a small MTU and two peers.
// wirecage runs in the lab's client namespace; its peers are wireguard-go.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Lab } from '../lib/netns.js';
import { generatePresharedKey } from '../lib/wg.js';
import { cageKey, cageLab, registerClient, serverPeer, startFixture, wirecage, writeWgQuick, type CageLab } from '../lib/cage.js';

const DNS_SERVER = fileURLToPath(new URL('./fixtures/dns-server.mjs', import.meta.url));
const HTTP_SERVER = fileURLToPath(new URL('./fixtures/http-server.mjs', import.meta.url));

describe('wirecage run: basics', function () {
  this.timeout(60_000);
  const lab = new Lab();
  let c: CageLab;
  after(() => lab.teardown());

  before(async () => {
    c = await cageLab(lab, { servers: 2 });
  });

  it('fetches a page by name: DNS and HTTP through the tunnel', async () => {
    const srv = c.servers[0]!;
    const dns = await startFixture(srv.ns, DNS_SERVER, [srv.v4, `web.lab=${srv.v4}`]);
    await startFixture(srv.ns, HTTP_SERVER, [srv.v4, '8080', 'hello from the lab']);
    const key = await cageKey(c.dir, 'web');
    const me = srv.clientAddress(2);
    await registerClient(srv, key, [me.v4]);
    const conf = await writeWgQuick(c.dir, 'web.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 }, [
      serverPeer(srv),
    ]);

    const r = await wirecage(c.client, ['-c', conf, '--', 'curl', '-sS', '--max-time', '5', 'http://web.lab:8080/']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from the lab\n');
    assert.match(dns.output(), /^query web\.lab 1$/m, 'the name was not resolved by the lab DNS server behind the tunnel');
  });

  it('carries IPv6 when the config has an IPv6 Address', async () => {
    const srv = c.servers[0]!;
    const key = await cageKey(c.dir, 'v6');
    const me = srv.clientAddress(3);
    await registerClient(srv, key, [me.v4, me.v6]);
    const conf = await writeWgQuick(c.dir, 'v6.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32, ${me.v6}/128`, DNS: srv.v4 }, [
      serverPeer(srv, { v6: true }),
    ]);
    const r = await wirecage(c.client, ['-c', conf, '--', 'ping', '-6', '-n', '-c1', '-W2', srv.v6]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`from ${srv.v6}: icmp_seq=1`));
  });

  it('handshakes with a preshared key, and not with a wrong one', async () => {
    const srv = c.servers[0]!;
    const key = await cageKey(c.dir, 'psk');
    const me = srv.clientAddress(4);
    const pskFile = await generatePresharedKey(c.dir, 'psk');
    await registerClient(srv, key, [me.v4], pskFile);
    const psk = (await readFile(pskFile, 'utf8')).trim();
    const iface = { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4 };
    const good = await writeWgQuick(c.dir, 'psk.conf', iface, [serverPeer(srv, { presharedKey: psk })]);
    const r = await wirecage(c.client, ['-c', good, '--', 'ping', '-n', '-c1', '-W2', srv.v4]);
    assert.equal(r.code, 0, r.stdout + r.stderr);

    const wrongPsk = Buffer.alloc(32, 7).toString('base64');
    const bad = await writeWgQuick(c.dir, 'badpsk.conf', iface, [serverPeer(srv, { presharedKey: wrongPsk })]);
    const w = await wirecage(c.client, ['-c', bad, '--wait-handshake', '1', '--', 'true']);
    assert.equal(w.code, 125);
    assert.match(w.stderr, /no WireGuard handshake/);
  });

  it('sets the tunnel MTU from the config (1280) and it holds for full-size packets', async () => {
    const srv = c.servers[0]!;
    const key = await cageKey(c.dir, 'mtu');
    const me = srv.clientAddress(5);
    await registerClient(srv, key, [me.v4]);
    const conf = await writeWgQuick(c.dir, 'mtu.conf', { PrivateKey: key.privateKey, Address: `${me.v4}/32`, DNS: srv.v4, MTU: 1280 }, [
      serverPeer(srv),
    ]);
    // 1252 bytes of ICMP payload + 28 of headers = 1280 exactly, sent with DF; one more byte must not fit.
    const script = `ip link show wirecage && ping -n -c1 -W2 -M do -s 1252 ${srv.v4} && ! ping -n -c1 -W1 -M do -s 1253 ${srv.v4}`;
    const r = await wirecage(c.client, ['-c', conf, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\d+: wirecage: <[^>]*\bUP\b[^>]*> mtu 1280 /m);
    assert.match(r.stdout, /1 received/);
  });

  it("routes each peer's AllowedIPs to that peer (two wireguard-go servers)", async () => {
    const [a, b] = [c.servers[0]!, c.servers[1]!];
    const key = await cageKey(c.dir, 'two');
    const meA = a.clientAddress(6);
    const meB = b.clientAddress(6);
    await registerClient(a, key, [meA.v4]);
    await registerClient(b, key, [meB.v4]);
    const conf = await writeWgQuick(c.dir, 'two.conf', { PrivateKey: key.privateKey, Address: `${meA.v4}/24, ${meB.v4}/24`, DNS: a.v4 }, [
      serverPeer(a),
      serverPeer(b),
    ]);
    const r = await wirecage(c.client, ['-c', conf, '--', 'sh', '-c', `ping -n -c1 -W2 ${a.v4} && ping -n -c1 -W2 ${b.v4}`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // Each server only knows its own prefix: a reply from it proves the packet went to that peer.
    // (The /24 Addresses also make the kernel route each prefix before wirecage adds AllowedIPs.)
    for (const s of [a, b]) {
      const peer = (await s.wg.dump()).peers.find((p) => p.publicKey === key.publicKey);
      assert.ok(peer?.latestHandshake, `no handshake on ${s.ns.name}`);
      assert.ok(peer.rxBytes > 0, `${s.ns.name} received nothing from the cage`);
    }
  });
});
