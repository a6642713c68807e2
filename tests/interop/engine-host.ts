// Runs one wg-engine Device inside whatever network namespace it was started
// in (the interop tests start it under `ip netns exec`). Configuration comes
// only through the UAPI socket, by the real `wg` tool; IP packets move over
// the IPC channel: {type:'send', packet} in, {type:'tun', packet} out.
import { Device, UapiServer, UdpBind, createLogger } from '@wirecage/wg-engine';

const name = process.argv[2];
if (!name || !process.send) {
  console.error('usage: engine-host <ifname> (with an IPC channel)');
  process.exit(2);
}

const device = new Device({ logger: createLogger(process.env.ENGINE_LOG === 'debug' ? 'debug' : 'warn') });
let bind = await UdpBind.open(device, { port: 0 });
device.io.writeTun = (packet) => process.send!({ type: 'tun', packet: Buffer.from(packet).toString('hex') });
const uapi = await UapiServer.listen(device, name, {
  async setListenPort(port) {
    if (port === bind.port) return;
    const next = await UdpBind.open(device, { port });
    bind.close();
    bind = next;
  },
});
device.up();

process.on('message', (m: { type: string; packet?: string }) => {
  if (m.type === 'send' && m.packet) device.sendPacket(Buffer.from(m.packet, 'hex'));
  if (m.type === 'stats') {
    process.send!({ type: 'stats', drops: device.drops.toJSON(), peers: device.peerCount });
  }
});

device.on('handshake-complete', (peer) => process.send!({ type: 'handshake', peer: peer.publicKey.toString('base64') }));

const shutdown = async () => {
  device.close();
  bind.close();
  await uapi.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('disconnect', () => void shutdown());
process.send({ type: 'ready', port: bind.port, socket: uapi.socketPath });
