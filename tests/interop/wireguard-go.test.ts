// Interop: the wirecage engine and wireguard-go (from Debian) in two lab
// namespaces joined by a veth. The engine is configured only through its
// UAPI socket by the real `wg` tool; ICMP echo through the tunnel is
// answered by the wireguard-go namespace's kernel, or by the test on the
// engine's side.
import assert from 'node:assert/strict';
import { Lab, type Netns } from '../lib/netns.js';
import { generateKeyPair, generatePresharedKey, nsWgSet, wgShow, wgShowDump, type WgKeyPair } from '../lib/wg.js';
import { startWireguardGo, type WireguardGoPeer } from '../lib/wireguard-go.js';
import { waitFor } from '../lib/wait.js';
import { EngineProcess } from './engine-process.js';
import { echoRequest, parseEchoReply } from './packets.js';

const ENGINE_V4 = '100.64.7.1';
const WGO_V4 = '100.64.7.2';
const ENGINE_V6 = 'fd7a:7e57::1';
const WGO_V6 = 'fd7a:7e57::2';
const ENGINE_PORT = 51820;

interface Setup {
  lab: Lab;
  eng: Netns;
  wgo: Netns;
  engine: EngineProcess;
  go: WireguardGoPeer;
  engineKeys: WgKeyPair;
  /** The engine side's underlay address as wireguard-go sees it. */
  engineHost: string;
  pskFile?: string;
}

async function setup(lab: Lab, opts: { psk?: boolean; outer: 4 | 6; goInitiates?: boolean }): Promise<Setup> {
  const eng = await lab.namespace('eng');
  const wgo = await lab.namespace('wgo');
  const link = await lab.veth(eng, wgo);
  const engineHost = opts.outer === 4 ? link.a.v4! : link.a.v6!;
  const goHost = opts.outer === 4 ? link.b.v4! : link.b.v6!;
  const dir = await lab.tempDir();
  const engineKeys = await generateKeyPair(dir, 'engine');
  const psk = opts.psk ? await generatePresharedKey(dir) : undefined;

  const go = await startWireguardGo(wgo, {
    addresses: [`${WGO_V4}/24`, `${WGO_V6}/64`],
    peers: [
      {
        publicKey: engineKeys.publicKey,
        allowedIps: [`${ENGINE_V4}/32`, `${ENGINE_V6}/128`],
        presharedKeyFile: psk,
        // wireguard-go can only initiate when it knows where the engine is.
        endpoint: opts.goInitiates ? formatHostPort(engineHost, ENGINE_PORT) : undefined,
      },
    ],
  });

  const ifname = lab.uniqueIfname('wc');
  const engine = await EngineProcess.start(lab, eng, ifname);
  const peerArgs = ['peer', go.publicKey, 'allowed-ips', `${WGO_V4}/32,${WGO_V6}/128`];
  if (!opts.goInitiates) peerArgs.push('endpoint', go.endpoint(goHost));
  if (psk) peerArgs.push('preshared-key', psk);
  await nsWgSet(eng, ifname, ['private-key', engineKeys.privateKeyFile, 'listen-port', String(ENGINE_PORT), ...peerArgs]);
  return { lab, eng, wgo, engine, go, engineKeys, engineHost, pskFile: psk };
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

describe('interop with wireguard-go', function () {
  this.timeout(60_000);

  for (const variant of [
    { name: 'engine initiates, IPv4 underlay, no PSK', psk: false, outer: 4 as const },
    { name: 'engine initiates, IPv6 underlay, with PSK', psk: true, outer: 6 as const },
  ]) {
    describe(variant.name, () => {
      const lab = new Lab();
      let s: Setup;
      before(async () => {
        s = await setup(lab, variant);
      });
      after(() => lab.teardown());

      it('completes the handshake on the first packet and gets IPv4 echo replies from the far kernel', async () => {
        await s.engine.pingUntilReply((seq) => echoRequest(ENGINE_V4, WGO_V4, 0x4001, seq), 0x4001);
        const reply = s.engine.received.map(parseEchoReply).find((r) => r?.id === 0x4001)!;
        assert.deepEqual([...reply.src], WGO_V4.split('.').map(Number));
        const peer = (await s.go.dump()).peers[0]!;
        assert.ok(peer.latestHandshake, 'wireguard-go records the handshake');
        assert.ok(peer.rxBytes > 0 && peer.txBytes > 0);
        assert.equal(s.engine.handshakes, 1);
      });

      it('carries IPv6 inner packets', async () => {
        await s.engine.pingUntilReply((seq) => echoRequest(ENGINE_V6, WGO_V6, 0x6001, seq), 0x6001);
      });

      it('shows the session in `wg show` on the engine side', async () => {
        const dump = await wgShowDump(s.eng, s.engine.ifname);
        assert.equal(dump.interface.publicKey, s.engineKeys.publicKey);
        assert.equal(dump.interface.listenPort, ENGINE_PORT);
        const peer = dump.peers[0]!;
        assert.equal(peer.publicKey, s.go.publicKey);
        assert.ok(peer.latestHandshake && Date.now() - peer.latestHandshake.getTime() < 60_000);
        assert.ok(peer.rxBytes > 0 && peer.txBytes > 0);
        assert.deepEqual(peer.allowedIps.sort(), [`${WGO_V4}/32`, `${WGO_V6}/128`].sort());
        assert.equal(peer.presharedKey !== null, variant.psk);
        const text = await wgShow(s.eng, s.engine.ifname);
        assert.match(text, /latest handshake: (Now|.* ago)/);
        assert.match(text, /transfer: .* received, .* sent/);
      });

      it('keeps traffic flowing across a re-handshake started by wireguard-go', async () => {
        const before = (await wgShowDump(s.eng, s.engine.ifname)).peers[0]!.latestHandshake!;
        // Forgetting and re-adding the peer drops wireguard-go's session; its next packet needs a new handshake.
        await s.go.removePeer(s.engineKeys.publicKey);
        await s.go.setPeer({
          publicKey: s.engineKeys.publicKey,
          allowedIps: [`${ENGINE_V4}/32`, `${ENGINE_V6}/128`],
          endpoint: formatHostPort(s.engineHost, ENGINE_PORT),
          presharedKeyFile: s.pskFile,
        });
        s.engine.answerEchoRequests();
        const ping = await s.wgo.ping(ENGINE_V4, { count: 1, waitS: 5 });
        assert.equal(ping.code, 0, `wireguard-go side ping through the new session:\n${ping.stdout}${ping.stderr}`);
        await waitFor(
          async () => {
            const hs = (await wgShowDump(s.eng, s.engine.ifname)).peers[0]!.latestHandshake;
            return hs && hs.getTime() > before.getTime() - 1000 && s.engine.handshakes >= 2;
          },
          { what: 'the engine to confirm the new session', timeoutMs: 10_000 },
        );
        s.engine.received.length = 0;
        await s.engine.pingUntilReply((seq) => echoRequest(ENGINE_V4, WGO_V4, 0x4002, seq), 0x4002);
        const drops = await s.engine.drops();
        assert.equal(drops['transport-decrypt'], 0);
        assert.equal(drops['handshake-decrypt'], 0);
      });
    });
  }

  describe('wireguard-go initiates', () => {
    const lab = new Lab();
    let s: Setup;
    before(async () => {
      s = await setup(lab, { outer: 4, psk: true, goInitiates: true });
      s.engine.answerEchoRequests();
    });
    after(() => lab.teardown());

    it('answers its initiation and carries its pings both ways (IPv4 and IPv6)', async () => {
      const r4 = await s.wgo.ping(ENGINE_V4, { count: 3, waitS: 5 });
      assert.equal(r4.code, 0, r4.stdout + r4.stderr);
      const r6 = await s.wgo.ping(ENGINE_V6, { count: 2, waitS: 5 });
      assert.equal(r6.code, 0, r6.stdout + r6.stderr);
      // The engine learned wireguard-go's endpoint from the authenticated initiation (roaming).
      const peer = (await wgShowDump(s.eng, s.engine.ifname)).peers[0]!;
      assert.ok(peer.endpoint?.startsWith('198.18.'), `endpoint ${peer.endpoint}`);
      assert.ok(peer.latestHandshake);
    });
  });
});
