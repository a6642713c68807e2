// A lossy, reordering, duplicating link on one interface's egress, for the
// WireGuard UDP the server sends (matched by its source port).
//
// `tc netem` would do it, but kernels built without CONFIG_NET_SCH_NETEM
// (this CI's among them) have no sch_netem and no module to load. The same
// faults from what such kernels do have: an nftables netdev egress chain
// drops a random 5 % and duplicates a random 2 % (`dup to` the same device),
// and marks a random 25 % for an HTB class of limited rate, where they queue
// while the rest pass: those arrive after packets sent later (reordering, by
// as much as the class's backlog). There is no fixed delay. Counters say how
// many packets (and bytes) went by and how many each fault hit.
//
// The faults hit what the server hands the link, as netem's would: with UDP
// segmentation offload that is a batch of WireGuard packets (one skb, cut up
// further on), so a loss takes a burst of packets, 5 % of the bytes.
import type { Netns } from '../../lib/netns.js';

export interface Count {
  packets: number;
  bytes: number;
}

export interface FaultCounts {
  all: Count;
  lost: Count;
  duplicated: Count;
  held: Count;
  /** Times the held class was over its rate (its packets then waited while others passed), and what its queue dropped. */
  heldOverlimits: number;
  heldDropped: number;
}

export interface FaultyLink {
  counts(): Promise<FaultCounts>;
  remove(): Promise<void>;
}

const TABLE = 'wctfaults';

/** Faults on `dev`'s egress in `ns`, for UDP from `sport`: loss and duplication in per mille, `heldPerMille` reordered. */
export async function faultyLink(
  ns: Netns,
  dev: string,
  sport: number,
  opts: { lossPerMille?: number; dupPerMille?: number; heldPerMille?: number; heldRate?: string } = {},
): Promise<FaultyLink> {
  const loss = opts.lossPerMille ?? 50;
  const dup = opts.dupPerMille ?? 20;
  const held = opts.heldPerMille ?? 250;
  const tc = (args: string[]) => ns.runOrThrow('tc', args);
  // Class 1:10 passes at once; 1:20 releases its packets at heldRate, behind those that went by 1:10 meanwhile.
  await tc(['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10']);
  const remove = async () => {
    await ns.run('nft', ['delete', 'table', 'netdev', TABLE]);
    await ns.run('tc', ['qdisc', 'del', 'dev', dev, 'root']);
  };
  try {
    await tc(['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit', 'quantum', '60000']);
    await tc([
      'class',
      'add',
      'dev',
      dev,
      'parent',
      '1:',
      'classid',
      '1:20',
      'htb',
      'rate',
      opts.heldRate ?? '50mbit',
      'ceil',
      opts.heldRate ?? '50mbit',
      'quantum',
      '1514',
    ]);
    // Each numgen draws anew: a packet may be duplicated and held, as netem's faults combine.
    await ns.runOrThrow('nft', ['-f', '-'], {
      input: `table netdev ${TABLE} {
  counter seen {}
  counter lost {}
  counter duplicated {}
  counter held {}
  chain egress {
    type filter hook egress device "${dev}" priority 0; policy accept;
    udp sport ${sport} counter name seen
    udp sport ${sport} numgen random mod 1000 < ${loss} counter name lost drop
    udp sport ${sport} numgen random mod 1000 < ${dup} counter name duplicated dup to "${dev}"
    udp sport ${sport} numgen random mod 1000 < ${held} counter name held meta priority set 1:20
  }
}
`,
    });
  } catch (e) {
    await remove();
    throw e;
  }
  const counts = async (): Promise<FaultCounts> => {
    const json = JSON.parse((await ns.runOrThrow('nft', ['-j', 'list', 'counters', 'table', 'netdev', TABLE])).stdout) as {
      nftables: { counter?: { name: string; packets: number; bytes: number } }[];
    };
    const c = Object.fromEntries(
      json.nftables.flatMap((i) => (i.counter ? [[i.counter.name, { packets: i.counter.packets, bytes: i.counter.bytes }]] : [])),
    ) as Record<string, Count>;
    const none = { packets: 0, bytes: 0 };
    // `tc -j` prints no JSON for HTB classes (iproute2 6.1): the text's "Sent ... (dropped D, overlimits O".
    const classes = (await tc(['-s', 'class', 'show', 'dev', dev])).stdout;
    const m = /class htb 1:20 [^\n]*\n\s*Sent \d+ bytes \d+ pkt \(dropped (\d+), overlimits (\d+)/.exec(classes);
    if (!m) throw new Error(`no statistics for class 1:20 in:\n${classes}`);
    return {
      all: c.seen ?? none,
      lost: c.lost ?? none,
      duplicated: c.duplicated ?? none,
      held: c.held ?? none,
      heldOverlimits: Number(m[2]),
      heldDropped: Number(m[1]),
    };
  };
  return { counts, remove };
}

/** The interface in `ns` that routes to `address`. */
export async function deviceTo(ns: Netns, address: string): Promise<string> {
  const route = JSON.parse((await ns.ip(['-j', 'route', 'get', address])).stdout) as { dev: string }[];
  return route[0]!.dev;
}
