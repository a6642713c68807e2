// The one place where the WireGuard device meets the NAT's TUN: decrypted
// packets go to the kernel stack in the NAT namespace, and what that stack
// sends back to the peers goes to the device for encryption.
import type { Tun } from '@wirecage/tun';
import type { Device, Logger } from '@wirecage/wg-engine';

export function connectTunnel(device: Device, tun: Tun, log: Logger): void {
  device.io.writeTun = (packet) => {
    tun.write(packet);
  };
  tun.onPackets((packets) => {
    for (const p of packets) device.sendPacket(p);
  });
  tun.onError((err) => log.error(`NAT TUN ${tun.name}: ${err.message}`));
}
