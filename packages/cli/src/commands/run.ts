import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import type { WgQuickConfig } from '../config/wg-quick.js';
import { loadWgQuick } from '../config/load.js';
import { flagsWithValues, shellLine, splitCommand, withoutFlags } from '../cage/argv.js';
import {
  checkEndpointResolves,
  hasTunnelFlags,
  parseTunnelFlags,
  tunnelConfig,
  tunnelFlagDefs,
  tunnelFlagsArgv,
  type TunnelFlags,
} from '../config/from-flags.js';
import { RunError, buildSpec } from '../cage/from-config.js';
import { browserProfileInUse } from '../cage/browser-lock.js';
import { EXIT_USAGE, EXIT_WIRECAGE_FAILED, type CageSpec } from '../cage/spec.js';
import type { ReRegistration } from '../servers/register.js';
import { isServerName } from '../servers/config.js';
import type { PublishSpec, ServerApi } from '../servers/publish.js';
import { closeSync, statSync } from 'node:fs';
import { WirecageError } from '../errors.js';
import { WirecageCommand, isOclifError } from '../command.js';

export default class Run extends WirecageCommand {
  static override failureExit = EXIT_WIRECAGE_FAILED;
  static override summary = 'Run a command in a cage whose only way out is a WireGuard tunnel.';
  static override description = `The cage has its own network namespace with only lo and the tunnel, the
config's addresses, routes for AllowedIPs and DNS through the tunnel. No root
needed (unprivileged user namespaces). The handshake completes before the
command starts. Without a command, runs $SHELL interactively.

The command runs as you, in a user namespace of its own, without any
capability; /tmp, /var/tmp, /dev/shm and /run are private and empty, so the
host's unix sockets (session bus, docker, ssh-agent, X11...) are out of reach
unless --share, --ssh-agent, --gui or --audio names them. With a terminal on
stdin it gets a terminal of its own, relayed to yours.

Exit status: the command's own; 128+N when signal N killed it; 125 when
wirecage fails (config, namespaces, handshake); 126 when the command cannot
be executed; 127 when it is not found; 2 for a command line it cannot use
(an unknown flag, a bad value, no server NAME nor -c).

Without -c, the first word names a server added with \`wirecage add-server\`
(or, when it is a file path, a wg-quick file): wirecage registers its key
for that server (made on first use in ~/.config/wirecage/keys/NAME.key) and
builds the tunnel from the server's answer. The answer is kept and reused
until half its lease has passed; when the server has forgotten the client
(no handshake with the kept answer), the run registers again, once, before
the command starts. Runs at the same time each use a key of their own
(keys/NAME.2.key, NAME.3.key, ... while NAME.key is in use): each cage is
its own peer, with its own address; to share one tunnel, use --name and
\`wirecage exec\`.

The earlier wirecage's flags work too, with or without the word run:
--wg-public-key KEY --wg-private-key-file FILE --wg-endpoint HOST:PORT
--wg-address IP[/LEN] (repeatable) [--wg-psk-file FILE] build the tunnel a
wg-quick file with one [Peer] would (AllowedIPs 0.0.0.0/0, and ::/0 with an
IPv6 address; DNS from --dns, else 1.1.1.1 through the tunnel). The key files
must be 0600 or stricter. \`wirecage config from-flags\` writes that file.

--publish PUBLIC:TARGET[/udp] (repeatable, with a server NAME only) asks that
server to forward its public port PUBLIC to port TARGET in the cage while the
command runs (TCP unless /udp); the service sees each client's real address.
PUBLIC 0 lets the server pick a free port. The command gets every forward
in WIRECAGE_PUBLISHED (tcp:PUBLIC:TARGET,udp:PUBLIC:TARGET) and where the
world reaches them in WIRECAGE_PUBLIC_ADDR; --on-publish CMD runs the shell
line CMD in the cage, with the same environment, once the command started
(for clients that take their port over an API; it should retry until that
API answers); its failure is a warning. A forward the server refuses (port
taken, not allowed, none free) ends the run with 125 and the server's
reason. The forwards are removed when the command ends.`;
  static override examples = [
    '<%= config.bin %> run work -- firefox   # a server added with add-server',
    '<%= config.bin %> run work --publish 28080:8000 -- python3 -m http.server 8000',
    '<%= config.bin %> run work --publish 0:8000 --on-publish \'echo "$WIRECAGE_PUBLISHED at $WIRECAGE_PUBLIC_ADDR" >&2\' -- python3 -m http.server 8000',
    '<%= config.bin %> run -c work.conf -- firefox',
    '<%= config.bin %> run -c work.conf -- curl https://example.org',
    'WIRECAGE_CONFIG=work.conf <%= config.bin %> run',
    '<%= config.bin %> --wg-public-key KEY --wg-private-key-file work.key --wg-endpoint vpn.example.org:51820 --wg-address 10.64.0.2 -- curl https://example.org',
  ];
  static override strict = false;
  static override usage = [
    'run --config FILE [flags] [--] [COMMAND [ARGS...]]',
    'run NAME [flags] [--] [COMMAND [ARGS...]]',
    'run --wg-public-key KEY --wg-private-key-file FILE --wg-endpoint HOST:PORT --wg-address IP[/LEN] [flags] [--] [COMMAND [ARGS...]]',
  ];
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'wg-quick configuration file.', env: 'WIRECAGE_CONFIG' }),
    dns: Flags.string({ summary: 'DNS server for the cage (repeatable); overrides DNS= in the config.', multiple: true }),
    'dns-override': Flags.boolean({
      summary: "Give the cage its own resolv.conf and nsswitch.conf (--no-dns-override keeps the host's).",
      default: true,
      allowNo: true,
    }),
    mtu: Flags.integer({ summary: "Tunnel MTU (default: the config's MTU, else 1420).", min: 576, max: 65535 }),
    tun: Flags.string({ summary: 'Name of the tunnel interface inside the cage.', default: 'wirecage' }),
    user: Flags.string({ summary: 'Run the command as this user (name or uid) with its groups; needs root.' }),
    'wait-handshake': Flags.integer({
      summary: 'Seconds to wait for the first handshake before giving up (exit 125).',
      default: 10,
      min: 1,
    }),
    'reresolve-after': Flags.integer({
      summary:
        "Once the tunnel is up, seconds of unanswered handshakes before the Endpoint's name is resolved again and a new address used (0: never; an IP address is never re-resolved). Default: the config file's ReresolveAfter, else 60.",
      min: 0,
      max: 86400,
      helpValue: 'SECONDS',
    }),
    linger: Flags.integer({
      summary:
        "Once the command has ended, seconds at most that the cage's network stays up while the TCP connections it closed deliver their last data and FIN to their peers (0: tear down at once). Default: the config file's Linger, else 2.",
      min: 0,
      max: 3600,
      helpValue: 'SECONDS',
    }),
    'metrics-listen': Flags.string({
      summary: 'Serve Prometheus metrics of the tunnel at http://ADDR/metrics, on the host side (host:port, [IPv6]:port or :port).',
      helpValue: 'ADDR',
    }),
    workers: Flags.integer({
      summary: 'Data-plane worker threads that encrypt and decrypt (default: the number of CPUs; 0 runs the same code on the main thread).',
      min: 0,
      max: 8,
    }),
    publish: Flags.string({
      summary: "Forward the server's public port to a port in the cage while the command runs (repeatable; with a server NAME).",
      helpValue: 'PUBLIC:TARGET[/udp]',
      multiple: true,
    }),
    'on-publish': Flags.string({
      summary:
        'Shell command line run in the cage once the command started and the --publish ports are known (WIRECAGE_PUBLISHED, WIRECAGE_PUBLIC_ADDR); its failure is a warning.',
      helpValue: 'CMD',
    }),
    offload: Flags.boolean({
      summary:
        "Let the cage's kernel hand the tunnel 64 KiB TCP/UDP super-packets (TSO/USO) that the workers cut and seal (--no-offload: one packet per read).",
      default: true,
      allowNo: true,
    }),
    root: Flags.boolean({
      summary:
        "Run the command as uid 0 of its own user namespace, with capabilities over that namespace only (not over the cage's network, mounts or processes).",
    }),
    share: Flags.string({
      summary:
        'Bind this file, socket or directory read-write into the cage at the same path (repeatable): host sockets are hidden unless named.',
      helpValue: 'PATH',
      multiple: true,
    }),
    'ssh-agent': Flags.boolean({
      summary: 'Let the command use the ssh-agent of $SSH_AUTH_SOCK (the agent signs; it cannot connect anywhere).',
    }),
    gui: Flags.boolean({
      summary: 'Pass the display: the X11 socket of $DISPLAY with $XAUTHORITY, and the Wayland socket of $WAYLAND_DISPLAY.',
    }),
    audio: Flags.boolean({
      summary: 'Pass the PulseAudio/PipeWire sockets (an audio server can load modules that send outside: see README).',
    }),
    name: Flags.string({
      summary:
        'Name the cage, so that `wirecage exec NAME` runs more commands in it, `ps` lists it and `stop NAME` ends it; it lives while any process is in it ([A-Za-z0-9_.-], up to 32).',
      helpValue: 'NAME',
    }),
    keep: Flags.boolean({ summary: 'With --name: keep the cage when no process is left in it, until `wirecage stop NAME`.' }),
    'log-level': Flags.string({
      summary: "wirecage's own logging on stderr.",
      options: ['silent', 'error', 'warn', 'info', 'debug'],
      default: 'warn',
    }),
    'log-format': Flags.string({
      summary: 'Log records on stderr: text (an ISO timestamp first) or json (one object per line: time, level, name, msg).',
      options: ['text', 'json'],
      default: 'text',
    }),
    'flow-log': Flags.string({
      summary:
        'Append one JSON line per flow the command opens through the tunnel, and one with its packets and bytes when it ends, to FILE (created 0600, hidden from the cage), or to stderr with -.',
      helpValue: 'FILE|-',
    }),
    ...tunnelFlagDefs,
  };

  /** --log-level once parsed: debug shows an internal error's stack. */
  private logLevel: string | undefined;

  protected override wantsStack(): boolean {
    return this.logLevel === 'debug' || super.wantsStack();
  }

  protected override stackHint(): string {
    return '--log-level debug (or WIRECAGE_DEBUG=1)';
  }

  async run(): Promise<void> {
    const line = await this.readCommandLine();
    const publish = await publishRequest(line);
    const tunnel = await this.loadTunnel(line);
    if (tunnel.warning && !isQuiet(line.flags)) process.stderr.write(`wirecage: warning: ${tunnel.warning}\n`);
    const specFor = await specMaker(line, tunnel);
    const spec = await specFor(tunnel.cfg);
    const { flags } = line;
    // A stored answer whose handshake fails: stage 2 registers again, once (spec.ts).
    if (tunnel.reregister)
      spec.reregister = { server: tunnel.reregister, dns: flags.dns, dnsOverride: flags['dns-override'], mtu: flags.mtu };
    // Launching needs @wirecage/netns's addon (the user-namespace helper, execve): loaded only now, so
    // help, a config error or a refused flag cost no native code.
    const { execCage } = await import('../cage/launch.js');
    if (publish) process.exitCode = await launchPublishing(spec, publish, line, tunnel, specFor);
    // A server's run holds its key slot for the cage's life: stage 2 inherits the lock as fd 4.
    else execCage(spec, tunnel.keySlotLock === undefined ? [] : [tunnel.keySlotLock]);
  }

  /** The command line: flags (a server NAME may have more after it), the command, and what the tunnel is made of. */
  private async readCommandLine(): Promise<CommandLine> {
    const valued = flagsWithValues(Run.flags);
    const first = splitCommand(this.argv, valued);
    let flagArgv = first.flags;
    let command = first.command;
    let flags = await this.parseFlags(flagArgv);
    let target: Target;
    if (hasTunnelFlags(flags)) {
      if (flags.config !== undefined)
        throw new RunError('the --wg-* flags and --config (or WIRECAGE_CONFIG) both describe the tunnel: give one of them');
      target = { tunnel: parseTunnelFlags(flags) };
    } else if (flags.config !== undefined) {
      target = { file: flags.config };
    } else {
      const word = command[0];
      if (word === undefined) throw new WirecageError('give a server name (see `wirecage servers`) or --config FILE', EXIT_USAGE);
      // NAME [flags] [--] CMD: flags may follow the name too.
      const rest = splitCommand(command.slice(1), valued);
      flagArgv = [...flagArgv, ...rest.flags];
      command = rest.command;
      flags = await this.parseFlags(flagArgv);
      if (hasTunnelFlags(flags))
        throw new RunError(`the --wg-* flags and "${word}" (a server name or config file) both describe the tunnel: give one of them`);
      target =
        word.includes('/') || statSync(word, { throwIfNoEntry: false })?.isFile() || !isServerName(word)
          ? { file: word }
          : { server: word };
    }
    return { flags, flagArgv, command, target, valued };
  }

  /** The tunnel's configuration: a wg-quick file, the --wg-* flags, or a server's answer. */
  private async loadTunnel(line: CommandLine): Promise<Tunnel> {
    const { target } = line;
    if ('file' in target) {
      const { config: cfg, warning } = loadWgQuick(target.file);
      return { cfg, configPath: resolve(target.file), hide: [], warning };
    }
    if ('tunnel' in target) {
      const t = target.tunnel;
      const cfg = tunnelConfig(t);
      await checkEndpointResolves(t);
      if (!isQuiet(line.flags)) this.tunnelFlagsNotes(line, t);
      return { cfg, configPath: t.privateKeyFile, hide: [], warning: null };
    }
    const [{ configForServer }, { claimKeySlot }] = await Promise.all([import('../servers/register.js'), import('../servers/key-slot.js')]);
    // Runs at once for one server each need a key of their own (servers/key-slot.ts).
    const slot = await claimKeySlot(target.server);
    let s;
    try {
      s = await configForServer(target.server, { slot });
    } catch (err) {
      closeSync(slot.lockFd);
      throw err;
    }
    const [configPath, ...hide] = s.hide as [string, ...string[]];
    return {
      cfg: s.config,
      configPath,
      hide,
      warning: s.warning,
      serverApi: s.api,
      reregister: s.reregister,
      server: s.server,
      keySlotLock: slot.lockFd,
    };
  }

  /** The earlier wirecage's flags: which DNS the cage gets, and the same run from a config file. */
  private tunnelFlagsNotes({ flags, flagArgv, command, valued }: CommandLine, t: TunnelFlags): void {
    if (t.defaultDns) {
      process.stderr.write(
        `wirecage: notice: no --dns given: the cage resolves names with ${t.defaultDns} through the tunnel, as the earlier wirecage did; choose with --dns IP\n`,
      );
    }
    const others = withoutFlags(flagArgv, new Set([...Object.keys(tunnelFlagDefs).map((f) => `--${f}`), '--dns']), valued);
    const file = 'wirecage.conf';
    process.stderr.write(
      `wirecage: hint: the same tunnel from a config file: ${shellLine([this.config.bin, 'config', 'from-flags', ...tunnelFlagsArgv(t, flags)])} > ${file}` +
        ` && ${shellLine([this.config.bin, 'run', '-c', file, ...others, ...(command.length ? ['--', ...command] : [])])}\n`,
    );
  }

  /** oclif's parse errors, worded as run's other errors: `wirecage: MESSAGE`, exit 2 for a usage error as oclif says. */
  private async parseFlags(argv: string[]) {
    try {
      const { flags } = await this.parse(Run, argv);
      this.logLevel = flags['log-level'];
      return flags;
    } catch (err) {
      if (isOclifError(err)) throw new WirecageError(err.message, err.oclif.exit === EXIT_USAGE ? EXIT_USAGE : undefined);
      throw err;
    }
  }
}

type RunFlags = Awaited<ReturnType<Run['parseFlags']>>;
type Target = { file: string } | { server: string } | { tunnel: TunnelFlags };

interface CommandLine {
  flags: RunFlags;
  /** The flag words of argv, before and after a server NAME (for the hint that repeats them). */
  flagArgv: string[];
  command: string[];
  target: Target;
  valued: ReturnType<typeof flagsWithValues>;
}

/** The tunnel's configuration, where it came from and, for a server's run, how to reach the server again. */
interface Tunnel {
  cfg: WgQuickConfig;
  configPath: string;
  hide: string[];
  warning: string | null;
  serverApi?: ServerApi;
  /** A stored answer: stage 2 registers again, once, when its handshake fails. */
  reregister?: ReRegistration;
  /** A server's run: stage 2 re-checks the registration when handshakes fail later. */
  server?: ReRegistration;
  /** A server's run: the fd holding its key slot's lock, for stage 2 to inherit. */
  keySlotLock?: number;
}

interface Publishing {
  module: typeof import('../servers/publish.js');
  requests: PublishSpec[];
}

const isQuiet = (flags: RunFlags) => ['silent', 'error'].includes(flags['log-level']);

/** --publish and --on-publish, checked. The servers' modules (registration, its HTTP client, port forwards) are loaded for a server's run only. */
async function publishRequest({ flags, target }: CommandLine): Promise<Publishing | undefined> {
  const publishFlags = flags.publish ?? [];
  const publishing = publishFlags.length > 0 ? await import('../servers/publish.js') : undefined;
  const publish = publishing ? publishFlags.map((p) => publishing.parsePublish(p)) : [];
  if (publish.length > 0 && !('server' in target)) {
    throw new RunError(
      '--publish needs a server added with `wirecage add-server` (run NAME): a wg-quick config or --wg-* flags have no server to ask for port forwards',
    );
  }
  if (flags['on-publish'] !== undefined && publish.length === 0)
    throw new RunError('--on-publish needs --publish: it runs once the published ports are known');
  return publishing && { module: publishing, requests: publish };
}

/**
 * How this run makes its spec of a config: the first one, and the answer of registering again
 * (launchPublishing). What the cage must not see is settled first, as the browser check.
 */
async function specMaker(line: CommandLine, tunnel: Tunnel): Promise<(cfg: WgQuickConfig) => Promise<CageSpec>> {
  const { flags, command, target } = line;
  const { cfg, configPath } = tunnel;
  // Key files a config names (PrivateKeyFile, PresharedKeyFile) are hidden in the cage like the config.
  const keyFiles = [cfg.interface.privateKeyFile, ...cfg.peers.map((p) => p.presharedKeyFile)];
  let hide = [...tunnel.hide, ...keyFiles.filter((f): f is string => f !== undefined && f !== configPath)];
  // The log is made (or refused) before any namespace exists, and the cage does not see it.
  const flowLog = flags['flow-log'] === undefined ? undefined : (await import('../cage/flow-log-file.js')).checkFlowLog(flags['flow-log']);
  if (flowLog && flowLog !== '-') hide = [...hide, flowLog];
  // Inside, the running browser's pid is invisible: Chromium would take its profile over, Firefox
  // would hand it the URL, which would load outside the tunnel.
  const busy = browserProfileInUse(command, process.env);
  if (busy) throw new RunError(busy);
  return async (c) => {
    const spec = await buildSpec(c, {
      configPath,
      hide,
      command,
      dns: flags.dns,
      dnsOverride: flags['dns-override'],
      mtu: flags.mtu,
      tun: flags.tun,
      user: flags.user,
      waitHandshake: flags['wait-handshake'],
      reresolveAfter: flags['reresolve-after'],
      linger: flags.linger,
      metricsListen: flags['metrics-listen'],
      workers: flags.workers,
      offload: flags.offload,
      logLevel: flags['log-level'] as 'warn',
      logFormat: flags['log-format'] as 'text',
      root: flags.root,
      share: flags.share,
      sshAgent: flags['ssh-agent'],
      gui: flags.gui,
      audio: flags.audio,
    });
    if (flowLog) spec.flowLog = flowLog;
    await nameCage(spec, flags);
    spec.source = 'server' in target ? target.server : 'tunnel' in target ? '--wg-* flags' : configPath;
    // An outer cage's forwards are not this run's (a run inside a cage inherits its environment).
    for (const k of ['WIRECAGE_PUBLISHED', 'WIRECAGE_PUBLIC_ADDR']) delete spec.env[k];
    // Handshakes failing while the command runs: stage 2 also re-checks the registration (servers/lease-recheck.ts).
    if (tunnel.server) spec.recheck = tunnel.server;
    return spec;
  };
}

/** run --name (cage/named-cage.ts): a name already running is refused here already, before the tunnel. */
async function nameCage(spec: CageSpec, flags: RunFlags): Promise<void> {
  if (flags.keep && flags.name === undefined)
    throw new WirecageError('--keep needs --name: only a named cage can be joined or stopped later', EXIT_USAGE);
  if (flags.name === undefined) return;
  const { checkCageName, claimName } = await import('../cage/named.js');
  const name = checkCageName(flags.name);
  closeSync(await claimName(spec.runtimeDir, name));
  spec.named = { name, keep: flags.keep };
}

/** A run with --publish: the forwards are removed after the command, so this process stays (launchCage, not execCage). */
async function launchPublishing(
  spec: CageSpec,
  publish: Publishing,
  { flags }: CommandLine,
  tunnel: Tunnel,
  specFor: (cfg: WgQuickConfig) => Promise<CageSpec>,
): Promise<number> {
  const api = tunnel.serverApi!;
  const { reregister } = tunnel;
  const [{ launchCage }, { ApiError }, { registerAfresh }] = await Promise.all([
    import('../cage/launch.js'),
    import('../servers/http.js'),
    import('../servers/register.js'),
  ]);
  const warn = (m: string) => {
    if (flags['log-level'] !== 'silent') process.stderr.write(`wirecage: warning: ${m}\n`);
  };
  const onPublish = flags['on-publish'];
  const launch = (s: CageSpec) =>
    publish.module.withPublishedPorts(api, publish.requests, warn, (made) =>
      launchCage(
        { ...s, env: { ...s.env, ...publish.module.publishedEnv(made) }, ...(onPublish ? { onPublish } : {}) },
        tunnel.keySlotLock === undefined ? [] : [tunnel.keySlotLock],
      ),
    );
  try {
    return await launch(spec);
  } catch (err) {
    // 404: the server does not know the client the stored answer is for (the forwards come
    // before the cage, so before the handshake that would tell): register again, once, here.
    if (!(reregister && err instanceof ApiError && err.status === 404 && /no peer is registered/.test(err.message))) throw err;
    const fresh = await registerAfresh(reregister, tunnel.cfg.interface.privateKey);
    if (fresh.warning) warn(fresh.warning);
    warn(`${err.message}: registered again with ${reregister.apiUrl}`);
    return launch(await specFor(fresh.config));
  }
}
