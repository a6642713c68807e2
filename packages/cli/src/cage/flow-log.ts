// `run --flow-log FILE|-`: one JSON line per flow the caged program opens
// through the tunnel, one when it ends (or is still open when the cage exits)
// with its packets and bytes each way, and one per DNS answer it gets. Taken
// from the kernel of the cage's own network namespace: conntrack's new and
// destroy events and nfnetlink_log's copies of DNS answers, over nfnetlink
// (flow-log-kernel.ts explains the setup), never from the data plane: the
// engine does no work for it (the cage's kernel does, in conntrack). Chosen
// over watching the first packet of each 5-tuple on the TUN because the
// kernel already keeps the table, its counters and its timeouts, off our
// threads. The outer WireGuard traffic is in the host's namespace, not the
// cage's: it never appears. Flows between the cage's own addresses (lo, or
// the tunnel address to itself) never leave it and are left out.
import { BlockList, isIPv6 } from 'node:net';
import { closeSync, writeSync } from 'node:fs';
import type { CleanupStack, NfnlSocket } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { CT_DELETE, CT_NEW, NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW, parseFlow, type Flow } from './flow-log-conntrack.js';
import { dumpFlows, enableConntrack, openNfnl, receiveDnsAnswers } from './flow-log-kernel.js';
import { NFUL_PACKET, parseDnsAnswer } from './flow-log-dns.js';
import { messages, type NlMessage } from './flow-log-netlink.js';
import { openFlowLog } from './flow-log-file.js';
import type { CageSpec } from './spec.js';

export async function startFlowLog(
  spec: CageSpec & { flowLog: string },
  netnsFd: number,
  cleanups: CleanupStack,
  log: Logger,
): Promise<void> {
  const out = openFlowLog(spec.flowLog);
  if (out !== 2) cleanups.push(() => closeSync(out));
  await enableConntrack(netnsFd);
  const events = openNfnl(netnsFd, [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY]);
  cleanups.push(() => events.close());
  await receiveDnsAnswers(events);
  const local = localAddresses(spec.addresses);
  const lines = new FlowLogLines(out, (a) => local.check(a, isIPv6(a) ? 'ipv6' : 'ipv4'));

  events.watch((err) => {
    if (events.closed) return;
    try {
      if (err) throw err;
      drain(events, lines);
    } catch (e) {
      events.close();
      log.error(`--flow-log stopped: ${(e as Error).message}`);
    }
  });
  // Runs before the namespace's fd and the sockets close (the stack unwinds last in, first out).
  cleanups.push(async () => {
    if (events.closed) return;
    drain(events, lines);
    // What is still open at exit: its counts so far, from a dump of the table.
    const sock = openNfnl(netnsFd);
    try {
      await dumpFlows(sock, (m) => {
        const f = parseFlow(m);
        if (f) lines.flow('end', f, true);
      });
    } finally {
      sock.close();
      lines.flush();
    }
  });
}

/** Every datagram the socket holds, then one write of their lines. */
function drain(events: NfnlSocket, lines: FlowLogLines): void {
  for (;;) {
    const d = events.read();
    if (d === 'empty') break;
    if (d === 'overflow') {
      lines.lost();
      continue;
    }
    for (const m of messages(d)) lines.take(m);
  }
  lines.flush();
}

/**
 * The log's lines: the kernel's conntrack and DNS messages as JSON, gathered per batch of datagrams and
 * written in one go. An "end" line carries the time its flow's "new" line had, so a reader pairs them without state.
 */
class FlowLogLines {
  private readonly started = new Map<number, string>();
  private lines: string[] = [];

  /** `out` is the fd openFlowLog gave (2 is stderr); `isLocal` tells the cage's own addresses, whose traffic never left it. */
  constructor(
    private readonly out: number,
    private readonly isLocal: (address: string) => boolean,
  ) {}

  /** A message of the conntrack or DNS-answer groups; others are not the log's. */
  take(m: NlMessage): void {
    if (m.type === NFUL_PACKET) {
      const answer = parseDnsAnswer(m);
      // A resolver the program runs on lo answers over lo: not the tunnel's.
      if (answer && !this.isLocal(answer.server))
        this.lines.push(JSON.stringify({ time: new Date().toISOString(), event: 'dns', ...answer }));
      return;
    }
    const f = m.type === CT_NEW || m.type === CT_DELETE ? parseFlow(m) : undefined;
    if (f) this.flow(m.type === CT_NEW ? 'new' : 'end', f);
  }

  flow(event: 'new' | 'end', f: Flow, atExit = false): void {
    if (this.isLocal(f.src) && this.isLocal(f.dst)) return;
    const time = new Date().toISOString();
    const { id, toDst, toSrc, ...tuple } = f;
    const line: Record<string, unknown> = { time, event, ...tuple };
    if (event === 'new') {
      this.started.set(id, time);
    } else {
      const start = this.started.get(id);
      this.started.delete(id);
      if (start) line.start = start;
      if (toDst && toSrc) Object.assign(line, { toDst, toSrc });
      if (atExit) line.atExit = true;
    }
    this.lines.push(JSON.stringify(line));
  }

  /** The kernel's queue overflowed and dropped events: the log says so where they are missing. */
  lost(): void {
    this.lines.push(
      JSON.stringify({ time: new Date().toISOString(), event: 'lost', reason: 'the kernel dropped flow events (queue full)' }),
    );
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const text = `${this.lines.join('\n')}\n`;
    this.lines = [];
    if (this.out === 2) process.stderr.write(text);
    else writeSync(this.out, text);
  }
}

/** The cage's own addresses and loopback: a flow between two of them never left the cage. */
export function localAddresses(addresses: readonly string[]): BlockList {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addAddress('::1', 'ipv6');
  for (const a of addresses) {
    const ip = a.split('/')[0]!;
    list.addAddress(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
  }
  return list;
}
