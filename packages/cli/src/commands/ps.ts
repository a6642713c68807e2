import { Args, Flags } from '@oclif/core';
import { WirecageCommand } from '../command.js';
import { WirecageError } from '../errors.js';
import { listCages, namedCageFile, runtimeDir } from '../cage/runtime-dir.js';
import { cageProcesses, readFacts } from '../cage/named.js';
import { healthFile, readHealth } from '../cage/health-file.js';
import { readCageUapi } from '../cage/cage-uapi.js';
import { formatPs, type PsRow } from '../cage/ps-format.js';

export default class Ps extends WirecageCommand {
  static override summary = 'List the running cages: name, tunnel, traffic, processes, uptime.';
  static override description = `One line per cage this user runs, named or not (an unnamed cage's name is
"-"): where its tunnel came from (a config file or a server NAME), its
tunnel addresses, the peer's endpoint, the latest handshake, bytes received
and sent, how many processes are in it and for how long it has run.
--json prints an array of objects: name (null when unnamed), source, tun,
pid (wirecage's), addresses, endpoint, latestHandshake (Unix seconds or
null), rxBytes, txBytes, processes, startedAt (Unix seconds), uptime
(seconds), keep, state (the tunnel's: "up", "handshaking" or null), upSince
(Unix seconds or null) and lastError (the last failure its healing saw, or
null).

ps NAME --flows prints the cage's flows now, from the conntrack table of its
network namespace: protocol, source, destination, state, packets/bytes each
way and age; --json prints them as an array of objects (protocol, src, sport,
dst, dport, icmp, state, toDst, toSrc, start, age). Only for a named cage
started with --flow-log (without it the cage tracks no flows, at no cost),
and only for the user who started it.

Exit status: 0, or 1 when a cage cannot be read.`;
  static override examples = [
    '<%= config.bin %> ps',
    '<%= config.bin %> ps --json',
    '<%= config.bin %> ps work',
    '<%= config.bin %> ps work --flows',
  ];
  static override args = { name: Args.string({ description: 'Only the cage of this name.' }) };
  static override flags = {
    json: Flags.boolean({ summary: 'Print a JSON array instead of a table.' }),
    flows: Flags.boolean({ summary: "The cage NAME's flows now (a cage started with --flow-log)." }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Ps);
    if (flags.flows) {
      if (args.name === undefined) throw new WirecageError('--flows needs a cage NAME: wirecage ps NAME --flows', 2);
      await printFlows(args.name, flags.json);
      return;
    }
    const dir = runtimeDir();
    const now = Date.now();
    const rows: PsRow[] = [];
    for (const cage of listCages(dir)) {
      const facts = readFacts(dir, cage.tun, cage.pid);
      if (args.name !== undefined && facts?.name !== args.name) continue;
      const iface = await readCageUapi(cage);
      const peer = iface.peers[0];
      const handshakes = iface.peers.map((p) => p.latestHandshake).filter((h): h is number => h !== null);
      const health = readHealth(healthFile(dir, cage.tun, cage.pid));
      rows.push({
        name: facts?.name ?? null,
        source: facts?.source ?? null,
        tun: cage.tun,
        pid: cage.pid,
        addresses: facts?.addresses ?? [],
        endpoint: peer?.endpoint ?? facts?.endpoints[0] ?? null,
        latestHandshake: handshakes.length ? Math.max(...handshakes) : null,
        rxBytes: iface.peers.reduce((n, p) => n + p.rxBytes, 0),
        txBytes: iface.peers.reduce((n, p) => n + p.txBytes, 0),
        processes: facts ? cageProcesses(facts.pidns, facts.own).length : null,
        startedAt: facts ? Math.floor(facts.started / 1000) : null,
        uptime: facts ? Math.max(0, Math.floor((now - facts.started) / 1000)) : null,
        keep: facts?.keep ?? false,
        state: health?.peers[0]?.state ?? null,
        upSince: health?.peers[0]?.upSince ? Math.floor(health.peers[0].upSince / 1000) : null,
        lastError: health?.peers[0]?.lastError ?? null,
      });
    }
    if (args.name !== undefined && rows.length === 0) throw new WirecageError(`no cage named ${args.name} is running (looked in ${dir})`);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    process.stdout.write(formatPs(rows, now));
  }
}

/** Asks the cage's control socket (which checks who asks) for its conntrack table. */
async function printFlows(name: string, json: boolean): Promise<void> {
  const [{ checkCageName }, { controlRequest }, { formatFlows }] = await Promise.all([
    import('../cage/named.js'),
    import('../cage/control.js'),
    import('../cage/flows-format.js'),
  ]);
  checkCageName(name);
  const { reply, socket } = await controlRequest(namedCageFile(runtimeDir(), name, 'ctl'), name, { op: 'flows' });
  socket.destroy();
  if (!reply.ok) throw new WirecageError(`${name}: ${reply.error}`);
  if (!('flows' in reply)) throw new WirecageError(`${name}: the cage answered without flows (an older wirecage?)`);
  process.stdout.write(json ? `${JSON.stringify(reply.flows, null, 2)}\n` : formatFlows(name, reply.flows));
}
