import { resolve } from 'node:path';
import { Command, Flags } from '@oclif/core';
import { ConfigError } from '../config/wg-quick.js';
import { loadWgQuick } from '../config/load.js';
import { splitCommand } from '../cage/argv.js';
import { RunError, buildSpec } from '../cage/from-config.js';
import { launchCage } from '../cage/launch.js';
import { EXIT_WIRECAGE_FAILED } from '../cage/spec.js';

export default class Run extends Command {
  static override summary = 'Run a command in a cage whose only way out is a WireGuard tunnel.';
  static override description = `The cage has its own network namespace with only lo and the tunnel, the
config's addresses, routes for AllowedIPs and DNS through the tunnel. No root
needed (unprivileged user namespaces). The handshake completes before the
command starts. Without a command, runs $SHELL interactively.

Exit status: the command's own; 128+N when signal N killed it; 125 when
wirecage fails (config, namespaces, handshake); 126 when the command cannot
be executed; 127 when it is not found.`;
  static override examples = [
    '<%= config.bin %> run -c work.conf -- firefox',
    '<%= config.bin %> run -c work.conf -- curl https://example.org',
    'WIRECAGE_CONFIG=work.conf <%= config.bin %> run',
  ];
  static override strict = false;
  static override usage = 'run --config FILE [flags] [--] [COMMAND [ARGS...]]';
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'wg-quick configuration file.', env: 'WIRECAGE_CONFIG', required: true }),
    dns: Flags.string({ summary: 'DNS server for the cage (repeatable); overrides DNS= in the config.', multiple: true }),
    'dns-override': Flags.boolean({
      summary: 'Give the cage its own resolv.conf and nsswitch.conf (--no-dns-override keeps the host\'s).',
      default: true,
      allowNo: true,
    }),
    mtu: Flags.integer({ summary: 'Tunnel MTU (default: the config\'s MTU, else 1420).', min: 576, max: 65535 }),
    tun: Flags.string({ summary: 'Name of the tunnel interface inside the cage.', default: 'wirecage' }),
    user: Flags.string({ summary: 'Run the command as this user (name or uid) with its groups; needs root.' }),
    'wait-handshake': Flags.integer({ summary: 'Seconds to wait for the first handshake before giving up (exit 125).', default: 10, min: 1 }),
    'metrics-listen': Flags.string({
      summary: 'Serve Prometheus metrics of the tunnel at http://ADDR/metrics, on the host side (host:port, [IPv6]:port or :port).',
      helpValue: 'ADDR',
    }),
    'log-level': Flags.string({ summary: 'wirecage\'s own logging on stderr.', options: ['silent', 'error', 'warn', 'info', 'debug'], default: 'warn' }),
  };

  async run(): Promise<void> {
    const valued = new Set(['-c', '--config', '--dns', '--mtu', '--tun', '--user', '--wait-handshake', '--metrics-listen', '--log-level']);
    const { flags: flagArgv, command } = splitCommand(this.argv, valued);
    let code: number;
    try {
      const { flags } = await this.parse(Run, flagArgv);
      const configPath = resolve(flags.config);
      const { config: cfg, warning } = loadWgQuick(flags.config);
      if (warning && !['silent', 'error'].includes(flags['log-level'])) process.stderr.write(`wirecage: warning: ${warning}\n`);
      const spec = await buildSpec(cfg, {
        configPath,
        command,
        dns: flags.dns,
        dnsOverride: flags['dns-override'],
        mtu: flags.mtu,
        tun: flags.tun,
        user: flags.user,
        waitHandshake: flags['wait-handshake'],
        metricsListen: flags['metrics-listen'],
        logLevel: flags['log-level'] as 'warn',
      });
      code = await launchCage(spec);
    } catch (err) {
      if (!(err instanceof RunError || err instanceof ConfigError || (err as Error).name?.endsWith('Error'))) throw err;
      process.stderr.write(`wirecage: ${(err as Error).message}\n`);
      code = EXIT_WIRECAGE_FAILED;
    }
    process.exitCode = code;
  }
}
