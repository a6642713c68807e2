// WireGuard's cross-platform userspace API (https://www.wireguard.com/xplatform/):
// the get=1 / set=1 text protocol that `wg` speaks to userspace implementations.
// This file turns a device into that text and applies set operations to it;
// uapi-server.ts carries it over a unix socket.
import { formatCidr, parseCidr } from './allowed-ips.js';
import { isZero } from './crypto/primitives.js';
import { keyToHex, parseKeyHex } from './crypto/keys.js';
import type { Device, PeerConfig } from './device.js';
import { Endpoint } from './endpoint.js';
import type { Peer } from './peer.js';

export const UAPI_EINVAL = 22;
export const UAPI_EADDRINUSE = 98;
export const UAPI_EPROTO = 71;
export const UAPI_EIO = 5;

export class UapiError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = 'UapiError';
  }
}

export interface UapiHooks {
  /** Rebinds the UDP socket(s) when listen_port changes. Throws with code EADDRINUSE when taken. */
  setListenPort?(port: number): Promise<void>;
}

/** The answer to get=1, without the trailing errno line. */
export function uapiGet(device: Device): string {
  const lines: string[] = [];
  if (device.identity) lines.push(`private_key=${keyToHex(device.identity.privateKey)}`);
  if (device.listenPort) lines.push(`listen_port=${device.listenPort}`);
  if (device.fwmark) lines.push(`fwmark=${device.fwmark}`);
  for (const p of device.peers()) {
    lines.push(`public_key=${keyToHex(p.publicKey)}`);
    lines.push(`preshared_key=${keyToHex(p.handshake.presharedKey)}`);
    lines.push('protocol_version=1');
    if (p.endpoint) lines.push(`endpoint=${p.endpoint.toString()}`);
    const ms = p.lastHandshakeWallMs;
    const sec = Math.floor(ms / 1000);
    lines.push(`last_handshake_time_sec=${sec}`);
    lines.push(`last_handshake_time_nsec=${Math.round((ms - sec * 1000) * 1e6)}`);
    lines.push(`tx_bytes=${p.txBytes}`);
    lines.push(`rx_bytes=${p.rxBytes}`);
    lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    for (const c of device.allowedIps.entriesFor(p)) lines.push(`allowed_ip=${formatCidr(c)}`);
  }
  return lines.map((l) => l + '\n').join('');
}

function parseUint(value: string, key: string, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) > max) throw new UapiError(UAPI_EINVAL, `${key}: "${value}" is not an integer in 0-${max}`);
  return Number(value);
}

function parseTrue(value: string, key: string): void {
  if (value !== 'true') throw new UapiError(UAPI_EINVAL, `${key}: only "true" is accepted, got "${value}"`);
}

/**
 * Applies the key=value lines of a set=1 operation in order, as wireguard-go
 * does: a failing line stops the operation and what came before stays applied.
 * Lines before the first public_key are device keys, the rest belong to the
 * peer named by the latest public_key (wireguard-go's handleDeviceLine and
 * handlePeerLine).
 */
export async function uapiSet(device: Device, lines: string[], hooks: UapiHooks = {}): Promise<void> {
  const section: PeerSection = { peer: null, pendingKey: null, skip: false };
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq < 1) throw new UapiError(UAPI_EINVAL, `line "${line}" is not key=value`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') startPeer(device, section, value);
    else if (section.peer === null && section.pendingKey === null && !section.skip) await handleDeviceLine(device, key, value, hooks);
    else handlePeerLine(device, section, key, value);
  }
  ensurePeer(device, section);
}

/** The peer that a set=1 operation's peer keys apply to. */
interface PeerSection {
  peer: Peer | null;
  /** A public_key the device does not have yet: created by the section's first applied key, or at the end. */
  pendingKey: Buffer | null;
  /** The section's keys are parsed but not applied (update_only on a new peer, remove, the device's own key). */
  skip: boolean;
}

function startPeer(device: Device, section: PeerSection, value: string): void {
  const pk = parseKeyHex(value, 'public_key');
  section.peer = device.getPeer(pk) ?? null;
  section.pendingKey = section.peer ? null : pk;
  section.skip = false;
  if (!section.peer && device.identity && device.identity.publicKey.equals(pk)) {
    // wg refuses to peer with itself; wireguard-go ignores such a section.
    section.skip = true;
    section.pendingKey = null;
  }
}

function ensurePeer(device: Device, section: PeerSection): Peer | null {
  if (section.skip) return null;
  if (!section.peer && section.pendingKey) {
    section.peer = device.setPeer(section.pendingKey);
    section.pendingKey = null;
  }
  return section.peer;
}

async function handleDeviceLine(device: Device, key: string, value: string, hooks: UapiHooks): Promise<void> {
  switch (key) {
    case 'private_key': {
      const k = parseKeyHex(value, 'private_key');
      device.setPrivateKey(isZero(k) ? null : k);
      break;
    }
    case 'listen_port':
      await setListenPort(device, parseUint(value, key, 65535), hooks);
      break;
    case 'fwmark':
      // Stored and reported for compatibility; the userspace engine marks nothing.
      device.fwmark = parseUint(value, key, 0xffffffff);
      break;
    case 'replace_peers':
      parseTrue(value, key);
      device.removeAllPeers();
      break;
    default:
      throw new UapiError(UAPI_EINVAL, `unknown device key "${key}"`);
  }
}

async function setListenPort(device: Device, port: number, hooks: UapiHooks): Promise<void> {
  if (!hooks.setListenPort) {
    device.listenPort = port;
    return;
  }
  try {
    await hooks.setListenPort(port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UapiError(code === 'EADDRINUSE' ? UAPI_EADDRINUSE : UAPI_EIO, `listen_port ${port}: ${(err as Error).message}`);
  }
}

function handlePeerLine(device: Device, section: PeerSection, key: string, value: string): void {
  // Each key is parsed before the peer is created: a bad value leaves no half-made peer.
  const apply = (update: PeerConfig): void => {
    const p = ensurePeer(device, section);
    if (p) device.setPeer(p.publicKey, update);
  };
  switch (key) {
    case 'update_only':
      parseTrue(value, key);
      if (!section.peer) {
        section.skip = true;
        section.pendingKey = null;
      }
      break;
    case 'remove':
      parseTrue(value, key);
      if (section.peer) device.removePeer(section.peer.publicKey);
      section.peer = null;
      section.pendingKey = null;
      section.skip = true;
      break;
    case 'preshared_key': {
      const k = parseKeyHex(value, key);
      apply({ presharedKey: isZero(k) ? null : k });
      break;
    }
    case 'endpoint':
      apply({ endpoint: einval(() => Endpoint.parse(value)) });
      break;
    case 'persistent_keepalive_interval':
      apply({ persistentKeepalive: parseUint(value, key, 65535) });
      break;
    case 'replace_allowed_ips':
      parseTrue(value, key);
      apply({ replaceAllowedIps: true });
      break;
    case 'allowed_ip':
      apply({ allowedIps: [einval(() => parseCidr(value))] });
      break;
    case 'protocol_version':
      if (value !== '1') throw new UapiError(UAPI_EPROTO, `protocol_version ${value} is not supported (only 1)`);
      ensurePeer(device, section);
      break;
    default:
      throw new UapiError(UAPI_EINVAL, `unknown peer key "${key}"`);
  }
}

/** A parser's own message, as the errno `wg` expects for a bad value. */
function einval<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UapiError(UAPI_EINVAL, (err as Error).message);
  }
}
