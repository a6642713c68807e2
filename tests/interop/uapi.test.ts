// The unmodified `wg` tool against the engine's UAPI socket: show, dump,
// showconf, and set (add/remove peers, change allowed IPs, keys, keepalive).
import assert from 'node:assert/strict';
import { Lab, type Netns } from '../lib/netns.js';
import { generateKeyPair, generatePresharedKey, nsWgSet, wgShow, wgShowDump } from '../lib/wg.js';
import { uapiRequest } from '@wirecage/wg-engine';
import { EngineProcess } from './engine-process.js';

describe('wg tool against the engine UAPI', function () {
  this.timeout(30_000);
  const lab = new Lab();
  let ns: Netns;
  let engine: EngineProcess;
  let dir: string;

  before(async () => {
    ns = await lab.namespace('uapi');
    engine = await EngineProcess.start(lab, ns, lab.uniqueIfname('wc'));
    dir = await lab.tempDir();
  });
  after(() => lab.teardown());

  it('sets the private key and listen port, and reports them', async () => {
    const keys = await generateKeyPair(dir, 'dev');
    await nsWgSet(ns, engine.ifname, ['private-key', keys.privateKeyFile, 'listen-port', '51999']);
    const dump = await wgShowDump(ns, engine.ifname);
    assert.equal(dump.interface.publicKey, keys.publicKey);
    assert.equal(dump.interface.listenPort, 51999);
    assert.equal(dump.peers.length, 0);
  });

  it('adds peers with endpoints, allowed IPs, PSK and keepalive, and removes them', async () => {
    const p1 = await generateKeyPair(dir, 'p1');
    const p2 = await generateKeyPair(dir, 'p2');
    const psk = await generatePresharedKey(dir);
    await nsWgSet(ns, engine.ifname, [
      'peer',
      p1.publicKey,
      'endpoint',
      '198.18.9.9:51820',
      'allowed-ips',
      '10.1.0.0/16,fd00:1::/64',
      'persistent-keepalive',
      '25',
      'preshared-key',
      psk,
      'peer',
      p2.publicKey,
      'endpoint',
      '[fd7a::9]:4000',
      'allowed-ips',
      '10.2.0.0/16',
    ]);
    let dump = await wgShowDump(ns, engine.ifname);
    const byKey = new Map(dump.peers.map((p) => [p.publicKey, p]));
    const a = byKey.get(p1.publicKey)!;
    assert.equal(a.endpoint, '198.18.9.9:51820');
    assert.deepEqual(a.allowedIps.sort(), ['10.1.0.0/16', 'fd00:1::/64']);
    assert.equal(a.persistentKeepalive, 25);
    assert.ok(a.presharedKey);
    assert.equal(a.latestHandshake, null);
    const b = byKey.get(p2.publicKey)!;
    assert.equal(b.endpoint, '[fd7a::9]:4000');
    assert.deepEqual(b.allowedIps, ['10.2.0.0/16']);
    assert.equal(b.persistentKeepalive, null);

    // Moving a prefix to another peer takes it from the first, as the kernel does.
    await nsWgSet(ns, engine.ifname, ['peer', p2.publicKey, 'allowed-ips', '10.2.0.0/16,10.1.0.0/16']);
    dump = await wgShowDump(ns, engine.ifname);
    assert.deepEqual(dump.peers.find((p) => p.publicKey === p1.publicKey)!.allowedIps, ['fd00:1::/64']);

    await nsWgSet(ns, engine.ifname, ['peer', p1.publicKey, 'remove']);
    dump = await wgShowDump(ns, engine.ifname);
    assert.deepEqual(
      dump.peers.map((p) => p.publicKey),
      [p2.publicKey],
    );

    const text = await wgShow(ns, engine.ifname);
    assert.match(text, new RegExp(`interface: ${engine.ifname}`));
    assert.match(text, /listening port: 51999/);
    assert.match(text, /allowed ips: 10\.2\.0\.0\/16, 10\.1\.0\.0\/16|allowed ips: 10\.1\.0\.0\/16, 10\.2\.0\.0\/16/);
  });

  it('prints a configuration with `wg showconf` that names no secret it was not given', async () => {
    const r = await ns.runOrThrow('wg', ['showconf', engine.ifname]);
    assert.match(r.stdout, /^\[Interface\]/m);
    assert.match(r.stdout, /^ListenPort = 51999$/m);
    assert.match(r.stdout, /^\[Peer\]/m);
    assert.match(r.stdout, /^Endpoint = \[fd7a::9\]:4000$/m);
  });

  it('answers malformed requests with an errno and keeps serving', async () => {
    const sock = `/var/run/wireguard/${engine.ifname}.sock`;
    assert.equal(await uapiRequest(sock, 'set=1\nbogus_key=1\n\n'), 'errno=22\n\n');
    assert.equal(await uapiRequest(sock, 'set=1\nlisten_port=70000\n\n'), 'errno=22\n\n');
    assert.equal(await uapiRequest(sock, 'set=1\npublic_key=zz\n\n'), 'errno=22\n\n');
    assert.equal(await uapiRequest(sock, 'frobnicate=1\n\n'), 'errno=22\n\n');
    const dump = await wgShowDump(ns, engine.ifname);
    assert.equal(dump.interface.listenPort, 51999);
  });
});
