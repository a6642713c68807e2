// `npm run demo`: the engine against wireguard-go in a private lab. Builds two
// network namespaces joined by a veth, starts wireguard-go in one and the
// wirecage engine in the other, configures both with the real `wg` tool,
// pings across the tunnel (IPv4 and IPv6), prints `wg show` for both sides
// and tears everything down. Nothing touches the machine's own network.
import { Lab } from '../lib/netns.js';
import { generateKeyPair, nsWgSet, wgShow } from '../lib/wg.js';
import { startWireguardGo } from '../lib/wireguard-go.js';
import { EngineProcess } from '../interop/engine-process.js';
import { echoRequest, parseEchoReply } from '../interop/packets.js';

if (process.getuid?.() !== 0) {
  console.error('demo: building network namespaces needs root (run it with sudo)');
  process.exit(1);
}

const lab = new Lab();
const step = (s: string) => console.log(`\n== ${s}`);
let failed = false;
try {
  step('lab: two network namespaces and a veth between them');
  const eng = await lab.namespace('eng');
  const wgo = await lab.namespace('wgo');
  const link = await lab.veth(eng, wgo);
  console.log(`${eng.name} ${link.a.v4} <-> ${link.b.v4} ${wgo.name}`);

  step('wireguard-go (Debian) in one, the wirecage engine in the other');
  const dir = await lab.tempDir();
  const engineKeys = await generateKeyPair(dir, 'engine');
  const go = await startWireguardGo(wgo, {
    addresses: ['100.64.7.2/24', 'fd7a:7e57::2/64'],
    peers: [{ publicKey: engineKeys.publicKey, allowedIps: ['100.64.7.1/32', 'fd7a:7e57::1/128'] }],
  });
  const engine = await EngineProcess.start(lab, eng, lab.uniqueIfname('wc'));
  await nsWgSet(eng, engine.ifname, [
    'private-key',
    engineKeys.privateKeyFile,
    'peer',
    go.publicKey,
    'endpoint',
    go.endpoint(link.b.v4!),
    'allowed-ips',
    '100.64.7.2/32,fd7a:7e57::2/128',
  ]);

  step('ping through the tunnel: the far kernel answers');
  for (const [src, dst, id] of [
    ['100.64.7.1', '100.64.7.2', 1],
    ['fd7a:7e57::1', 'fd7a:7e57::2', 2],
  ] as const) {
    const t0 = performance.now();
    await engine.pingUntilReply((seq) => echoRequest(src, dst, id, seq), id);
    const reply = engine.received.map(parseEchoReply).find((r) => r?.id === id);
    console.log(`${src} -> ${dst}: echo reply (seq ${reply?.seq}) after ${(performance.now() - t0).toFixed(0)} ms, handshake included`);
  }

  step(`wg show ${engine.ifname} (the wirecage engine, through its UAPI socket)`);
  console.log(await wgShow(eng, engine.ifname));
  step(`wg show ${go.ifname} (wireguard-go)`);
  console.log(await wgShow(wgo, go.ifname));
} catch (err) {
  failed = true;
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  step('tearing the lab down');
  await lab.teardown();
  console.log('done');
}
process.exit(failed ? 1 : 0);
