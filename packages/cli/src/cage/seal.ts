// The seal of the cage: everything but the network that decides what the
// command can reach. It runs in a user namespace of its own (the caller's uid
// inside by default, no capability at all; `--root`: uid 0 with capabilities
// over that namespace only), so the mounts below are locked for it. It gets a
// private /tmp, /var/tmp, /dev/shm and /run (with an empty runtime dir): the
// host's unix sockets there (session and system bus, docker, ssh-agent, X11,
// a browser's singleton socket...) lead around the tunnel, so none is reachable
// unless a flag names it. Variables that point to hidden sockets go too.
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { BindMount, PrivateDir } from '@wirecage/netns';
import { WirecageError } from '../errors.js';

export class SealError extends WirecageError {
  override name = 'SealError';
}

const EVERY_ID = '0 0 4294967295\n';

/** Directories the cage gets empty and private; the order is the mount order. */
export const PRIVATE_DIRS: readonly { path: string; mode: number }[] = [
  { path: '/tmp', mode: 0o1777 },
  { path: '/var/tmp', mode: 0o1777 },
  { path: '/dev/shm', mode: 0o1777 },
  { path: '/run', mode: 0o755 },
];

/** Variables naming a socket or service that is hidden in the cage, or a way to one (unless a flag shares it). */
const HIDDEN_VARIABLES = [
  'DBUS_SESSION_BUS_ADDRESS',
  'DBUS_SYSTEM_BUS_ADDRESS',
  'DOCKER_HOST',
  'CONTAINER_HOST',
  'PODMAN_HOST',
  'GPG_AGENT_INFO',
  'SESSION_MANAGER',
  'TMUX',
  'TMUX_PANE',
  'STY',
  'KITTY_LISTEN_ON',
  'WEZTERM_UNIX_SOCKET',
  'NVIM',
  'NVIM_LISTEN_ADDRESS',
  'VSCODE_IPC_HOOK_CLI',
  'GNOME_KEYRING_CONTROL',
  'ATSPI_BUS_ADDRESS',
];
const SSH_VARIABLES = ['SSH_AUTH_SOCK', 'SSH_AGENT_PID'];
const GUI_VARIABLES = ['DISPLAY', 'XAUTHORITY', 'WAYLAND_DISPLAY', 'WAYLAND_SOCKET'];
const AUDIO_VARIABLES = ['PULSE_SERVER', 'PIPEWIRE_REMOTE'];

export interface SealOptions {
  /** Uid 0 in the command's own namespace, with its capabilities there (and nowhere else). */
  root: boolean;
  /** Paths bound read-write at the same place in the cage (--share). */
  share: string[];
  sshAgent: boolean;
  gui: boolean;
  audio: boolean;
  cwd: string;
  env: Record<string, string>;
  /** Who started wirecage (stage 1's ids). */
  caller: { uid: number; gid: number };
  /** --user, when started as root. */
  user?: { uid: number; gid: number; groups: number[] };
}

/** What stage 2 passes to spawnInCage; ids are those of stage 2's namespace. */
export interface CageSeal {
  uidMap: string;
  gidMap: string;
  dropCapabilities: boolean;
  tmpfs: PrivateDir[];
  dirs: PrivateDir[];
  shares: BindMount[];
  sysctls: { path: string; value: string }[];
  /** The command runs as the host's root (uid 0 started wirecage, no --user): kernel-wide /proc files read-only. */
  readOnlyKernelFiles: boolean;
  /** The flags that pass host sockets in, which decide the variables a joined command keeps (joinEnvironment). */
  passes: Passes;
}

export interface Passes {
  sshAgent: boolean;
  gui: boolean;
  audio: boolean;
}

export function sealCage(o: SealOptions): { seal: CageSeal; env: Record<string, string> } {
  const privileged = o.caller.uid === 0;
  // Stage 2 is uid 0 of a namespace that maps only the caller, unless wirecage was started as root.
  const owner = privileged ? { uid: o.user?.uid ?? 0, gid: o.user?.gid ?? 0 } : { uid: 0, gid: 0 };
  // The command's namespace maps only the ids it runs as: the caller's (as uid 0 with --root) onto
  // stage 2's uid 0, or, started as root, its ids onto the same ones (--user's with its groups).
  // Root's --root maps every id: its capabilities over files (DAC override) hold only for files
  // whose owner is mapped, and "root in the cage" reads everyone's, as root does outside.
  const inside = (id: number) => (o.root ? 0 : id);
  const unprivileged = (id: number) => `${inside(id)} 0 1\n`;
  const identity = (ids: number[]) => [...new Set(ids)].map((id) => `${id} ${id} 1\n`).join('');
  const shares = sharedPaths(o);
  const env = cageEnvironment(o, shares);
  const runtime = runtimeDirFor(env, owner);
  return {
    seal: {
      uidMap: privileged ? (o.root ? EVERY_ID : identity([owner.uid])) : unprivileged(o.caller.uid),
      gidMap: privileged ? (o.root ? EVERY_ID : identity([owner.gid, ...(o.user?.groups ?? [])])) : unprivileged(o.caller.gid),
      dropCapabilities: !o.root,
      tmpfs: [...PRIVATE_DIRS.map((d) => ({ ...d, uid: 0, gid: 0 })), ...runtime.tmpfs],
      dirs: [{ path: '/run/lock', mode: 0o1777, uid: 0, gid: 0 }, ...runtime.dirs],
      shares,
      readOnlyKernelFiles: privileged && owner.uid === 0,
      passes: { sshAgent: o.sshAgent, gui: o.gui, audio: o.audio },
      sysctls: [
        // Ping without a raw socket, and low ports without a capability: the cage's network is the command's own.
        { path: 'net/ipv4/ping_group_range', value: privileged ? '0 4294967294' : '0 0' },
        { path: 'net/ipv4/ip_unprivileged_port_start', value: '0' },
      ],
    },
    env,
  };
}

/** True when `path` is in one of the cage's private directories (what is there on the host is not in the cage). */
export function isPrivatePath(path: string): boolean {
  return PRIVATE_DIRS.some((d) => path === d.path || path.startsWith(`${d.path}/`));
}

/** Where a bind mount over `path` lands: mount(2) follows symlinks, also dangling ones the cage will hold. */
export function mountTarget(path: string, depth = 0): string {
  try {
    return realpathSync(path);
  } catch {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink() || depth > 8) return path;
    return mountTarget(resolve(dirname(path), readlinkSync(path)), depth + 1);
  }
}

// The caller's runtime dir, empty and the command's own. Under a private directory it is made
// there; elsewhere it gets a tmpfs of its own.
function runtimeDirFor(env: Record<string, string>, owner: { uid: number; gid: number }): { tmpfs: PrivateDir[]; dirs: PrivateDir[] } {
  const dir = env.XDG_RUNTIME_DIR;
  if (!dir || !isAbsolute(dir)) return { tmpfs: [], dirs: [] };
  const entry = { path: dir, mode: 0o700, ...owner };
  return isPrivatePath(dir) ? { tmpfs: [], dirs: [entry] } : { tmpfs: [entry], dirs: [] };
}

function sharedPaths(o: SealOptions): BindMount[] {
  const paths = o.share.map((p) => existing(resolve(o.cwd, p), `--share ${p}`));
  if (o.sshAgent) paths.push(sshAgentSocket(o.env));
  if (o.gui) paths.push(...displaySockets(o.env));
  if (o.audio) paths.push(...audioSockets(o.env));
  // A working directory inside a private directory is the user's work: it comes along (but not
  // the private directory itself, nor the runtime dir, which hold the host's sockets).
  const cwd = mountTarget(o.cwd);
  const runtime = o.env.XDG_RUNTIME_DIR;
  const roots = ['/tmp', '/var/tmp'];
  if (roots.some((r) => cwd.startsWith(`${r}/`)) && !(runtime && (cwd === runtime || cwd.startsWith(`${runtime}/`)))) paths.push(cwd);
  return [...new Set(paths)].map((p) => ({ source: p, target: p, create: true }));
}

function existing(path: string, what: string): string {
  try {
    return realpathSync(path);
  } catch {
    throw new SealError(`${what}: no such file or directory`);
  }
}

function socketAt(path: string, what: string): string {
  const real = existing(path, what);
  if (!statSync(real).isSocket()) throw new SealError(`${what}: ${path} is not a socket`);
  return real;
}

function sshAgentSocket(env: Record<string, string>): string {
  const sock = env.SSH_AUTH_SOCK;
  if (!sock) throw new SealError('--ssh-agent: SSH_AUTH_SOCK is not set (is an agent running?)');
  return socketAt(sock, `--ssh-agent: SSH_AUTH_SOCK=${sock}`);
}

// X11 for $DISPLAY (its unix socket and the Xauthority file) and the Wayland socket: the display
// and nothing that could launch or resolve anything outside.
function displaySockets(env: Record<string, string>): string[] {
  const out: string[] = [];
  const display = env.DISPLAY;
  if (display) {
    const m = /^(?:unix)?:(\d+)(?:\.\d+)?$/.exec(display);
    if (!m) throw new SealError(`--gui: DISPLAY=${display} is not a local display (X11 over TCP cannot leave the cage): use :N`);
    out.push(socketAt(`/tmp/.X11-unix/X${m[1]}`, `--gui: DISPLAY=${display}`));
    if (env.XAUTHORITY) out.push(existing(env.XAUTHORITY, `--gui: XAUTHORITY=${env.XAUTHORITY}`));
  }
  const wayland = env.WAYLAND_DISPLAY;
  if (wayland) {
    const path = isAbsolute(wayland) ? wayland : join(env.XDG_RUNTIME_DIR ?? '', wayland);
    out.push(socketAt(path, `--gui: WAYLAND_DISPLAY=${wayland}`));
  }
  if (out.length === 0) throw new SealError('--gui: neither DISPLAY nor WAYLAND_DISPLAY is set');
  return out;
}

function audioSockets(env: Record<string, string>): string[] {
  const runtime = env.XDG_RUNTIME_DIR;
  const pulse = env.PULSE_SERVER?.replace(/^unix:/, '') ?? (runtime ? join(runtime, 'pulse/native') : '');
  const candidates = [pulse, runtime ? join(runtime, env.PIPEWIRE_REMOTE ?? 'pipewire-0') : ''];
  const out = candidates.filter((p) => p && statSync(p, { throwIfNoEntry: false })?.isSocket()).map((p) => realpathSync(p));
  if (out.length === 0) throw new SealError('--audio: no PulseAudio or PipeWire socket found in XDG_RUNTIME_DIR');
  return out;
}

/**
 * The environment a command joining the cage (`wirecage exec`) gets from its caller's: as the first
 * command's, without what points to a socket the cage does not share.
 */
export function joinEnvironment(passes: Passes, env: Record<string, string>, shared: string[]): Record<string, string> {
  return cageEnvironment(
    { ...passes, env } as SealOptions,
    shared.map((p) => ({ source: p, target: p })),
  );
}

// The environment without what points to a hidden socket: the known variables, and any whose value
// names a unix socket that the cage does not share.
function cageEnvironment(o: SealOptions, shares: BindMount[]): Record<string, string> {
  const drop = new Set(HIDDEN_VARIABLES);
  for (const [on, names] of [
    [o.sshAgent, SSH_VARIABLES],
    [o.gui, GUI_VARIABLES],
    [o.audio, AUDIO_VARIABLES],
  ] as const) {
    if (!on) for (const n of names) drop.add(n);
  }
  const shared = new Set(shares.map((s) => s.source));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.env)) {
    if (drop.has(k) || namesHiddenSocket(v, shared)) continue;
    env[k] = v;
  }
  return env;
}

function namesHiddenSocket(value: string, shared: Set<string>): boolean {
  const path = value.replace(/^unix:(path=)?/, '').split(/[,;]/)[0]!;
  if (!isAbsolute(path)) return false;
  try {
    return statSync(path).isSocket() && !shared.has(realpathSync(path));
  } catch {
    return false;
  }
}
