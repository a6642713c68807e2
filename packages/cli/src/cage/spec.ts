// What stage 1 (the oclif command, unprivileged, host namespaces) hands to
// stage 2 (root inside the user namespace). It travels as JSON over a pipe on
// fd 3, never in argv or the environment, because it carries the private key.
import type { CageSeal } from './seal.js';

export interface CagePeerSpec {
  publicKey: string; // base64
  presharedKey?: string; // base64
  /** Resolved numeric endpoint, "192.0.2.1:51820" or "[2001:db8::1]:51820". */
  endpoint?: string;
  /** The endpoint as the user wrote it, for messages. */
  endpointText?: string;
  allowedIps: string[];
  persistentKeepalive?: number;
}

export interface CageSpec {
  tun: string;
  mtu: number;
  privateKey: string; // base64
  listenPort?: number;
  addresses: string[];
  peers: CagePeerSpec[];
  /** null: leave the host's resolv.conf and nsswitch.conf as they are (--no-dns-override). */
  dns: { servers: string[]; search: string[] } | null;
  command: { file: string; args: string[] };
  env: Record<string, string>;
  cwd: string;
  waitHandshakeSeconds: number;
  /** Drop to this user for the command (only when wirecage was started as root). */
  user?: { uid: number; gid: number; groups: number[] };
  /** Paths the command must not see: the key and config files, wirecage's config dir, host resolver sockets. */
  hide: string[];
  /** The command's own user namespace, private directories, shared paths and the cage's sysctls (seal.ts). */
  seal: CageSeal;
  /** Where the UAPI socket goes (`wirecage show`), owned by the invoking user. */
  runtimeDir: string;
  /** Serve Prometheus metrics of the tunnel here (host side): "host:port", "[v6]:port" or ":port". */
  metricsListen?: string;
  /** Data-plane shard workers; 0 keeps the data path on the main thread. */
  workers: number;
  /** Open the TUN with offloads (virtio_net_hdr, TSO/USO); only with workers > 0. */
  offload: boolean;
  logLevel: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /**
   * `run NAME` built the tunnel from a stored registration (keys/NAME.lease.json): when the handshake
   * fails, stage 2 drops that answer (keeping the pinned server key) so the next run registers again.
   */
  leaseStateFile?: string;
}

/** wirecage's own exit codes (the command's status passes through otherwise). */
export const EXIT_USAGE = 2;
export const EXIT_WIRECAGE_FAILED = 125;
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_NOT_FOUND = 127;

/**
 * Signals wirecage forwards to the command. The command has a session (and, when stdin is a
 * terminal, a pseudo-terminal) of its own, so the caller's terminal never signals it directly:
 * each of these reaches it only through wirecage.
 */
export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH'] as const;
