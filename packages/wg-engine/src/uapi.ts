// WireGuard's cross-platform userspace API (https://www.wireguard.com/xplatform/):
// the get=1 / set=1 text protocol that `wg` speaks to userspace implementations.
// This file turns a device into that text and applies set operations to it;
// uapi-server.ts carries it over a unix socket.
import { formatCidr, parseCidr } from './allowed-ips.js';
import { isZero } from './crypto/primitives.js';
import { keyToHex, parseKeyHex } from './crypto/keys.js';
import type { Device } from './device.js';
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
 */
export async function uapiSet(device: Device, lines: string[], hooks: UapiHooks = {}): Promise<void> {
  let peer: Peer | null = null;
  // update_only: a public_key that does not exist yet is parsed but not created.
  let skipPeer = false;
  let pendingKey: Buffer | null = null;

  const ensurePeer = (): Peer | null => {
    if (skipPeer) return null;
    if (!peer && pendingKey) {
      peer = device.setPeer(pendingKey);
      pendingKey = null;
    }
    return peer;
  };

  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq < 1) throw new UapiError(UAPI_EINVAL, `line "${line}" is not key=value`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);

    if (key === 'public_key') {
      const pk = parseKeyHex(value, 'public_key');
      peer = device.getPeer(pk) ?? null;
      pendingKey = peer ? null : pk;
      skipPeer = false;
      if (!peer && device.identity && device.identity.publicKey.equals(pk)) {
        // wg refuses to peer with itself; wireguard-go ignores such a section.
        skipPeer = true;
        pendingKey = null;
      }
      continue;
    }

    if (peer === null && pendingKey === null && !skipPeer) {
      switch (key) {
        case 'private_key': {
          const k = parseKeyHex(value, 'private_key');
          device.setPrivateKey(isZero(k) ? null : k);
          break;
        }
        case 'listen_port': {
          const port = parseUint(value, key, 65535);
          if (hooks.setListenPort) {
            try {
              await hooks.setListenPort(port);
            } catch (err) {
              const code = (err as NodeJS.ErrnoException).code;
              throw new UapiError(code === 'EADDRINUSE' ? UAPI_EADDRINUSE : UAPI_EIO, `listen_port ${port}: ${(err as Error).message}`);
            }
          } else {
            device.listenPort = port;
          }
          break;
        }
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
      continue;
    }

    switch (key) {
      case 'update_only':
        parseTrue(value, key);
        if (!peer) {
          skipPeer = true;
          pendingKey = null;
        }
        break;
      case 'remove':
        parseTrue(value, key);
        if (peer) device.removePeer((peer as Peer).publicKey);
        peer = null;
        pendingKey = null;
        skipPeer = true;
        break;
      case 'preshared_key': {
        const k = parseKeyHex(value, key);
        const p = ensurePeer();
        if (p) device.setPeer(p.publicKey, { presharedKey: isZero(k) ? null : k });
        break;
      }
      case 'endpoint': {
        let ep: Endpoint;
        try {
          ep = Endpoint.parse(value);
        } catch (err) {
          throw new UapiError(UAPI_EINVAL, (err as Error).message);
        }
        const p = ensurePeer();
        if (p) device.setPeer(p.publicKey, { endpoint: ep });
        break;
      }
      case 'persistent_keepalive_interval': {
        const secs = parseUint(value, key, 65535);
        const p = ensurePeer();
        if (p) device.setPeer(p.publicKey, { persistentKeepalive: secs });
        break;
      }
      case 'replace_allowed_ips': {
        parseTrue(value, key);
        const p = ensurePeer();
        if (p) device.setPeer(p.publicKey, { replaceAllowedIps: true });
        break;
      }
      case 'allowed_ip': {
        let cidr;
        try {
          cidr = parseCidr(value);
        } catch (err) {
          throw new UapiError(UAPI_EINVAL, (err as Error).message);
        }
        const p = ensurePeer();
        if (p) device.setPeer(p.publicKey, { allowedIps: [cidr] });
        break;
      }
      case 'protocol_version':
        if (value !== '1') throw new UapiError(UAPI_EPROTO, `protocol_version ${value} is not supported (only 1)`);
        ensurePeer();
        break;
      default:
        throw new UapiError(UAPI_EINVAL, `unknown peer key "${key}"`);
    }
  }
  ensurePeer();
}
