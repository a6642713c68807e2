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
import type { CleanupStack } from '@wirecage/netns';
import type { Logger } from '@wirecage/wg-engine';
import { CT_DELETE, CT_NEW, NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW, parseFlow, type Flow } from './flow-log-conntrack.js';
import { dumpFlows, enableConntrack, openNfnl, receiveDnsAnswers } from './flow-log-kernel.js';
import { NFUL_PACKET, parseDnsAnswer } from './flow-log-dns.js';
import { messages } from './flow-log-netlink.js';
import { openFlowLog } from './flow-log-file.js';
import type { CageSpec } from './spec.js';

type Event = 'new' | 'end';

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
  const isLocal = (a: string) => local.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
  const started = new Map<number, string>();
  let lines: string[] = [];

  const record = (event: Event, f: Flow, atExit = false) => {
    if (isLocal(f.src) && isLocal(f.dst)) return;
    const time = new Date().toISOString();
    const { id, toDst, toSrc, ...tuple } = f;
    const line: Record<string, unknown> = { time, event, ...tuple };
    if (event === 'new') {
      started.set(id, time);
    } else {
      const start = started.get(id);
      started.delete(id);
      if (start) line.start = start;
      if (toDst && toSrc) Object.assign(line, { toDst, toSrc });
      if (atExit) line.atExit = true;
    }
    lines.push(JSON.stringify(line));
  };
  const flush = () => {
    if (lines.length === 0) return;
    const text = `${lines.join('\n')}\n`;
    lines = [];
    if (out === 2) process.stderr.write(text);
    else writeSync(out, text);
  };
  const drain = () => {
    for (;;) {
      const d = events.read();
      if (d === 'empty') break;
      if (d === 'overflow') {
        lines.push(
          JSON.stringify({ time: new Date().toISOString(), event: 'lost', reason: 'the kernel dropped flow events (queue full)' }),
        );
        continue;
      }
      for (const m of messages(d)) {
        if (m.type === NFUL_PACKET) {
          const answer = parseDnsAnswer(m);
          // A resolver the program runs on lo answers over lo: not the tunnel's.
          if (answer && !isLocal(answer.server)) lines.push(JSON.stringify({ time: new Date().toISOString(), event: 'dns', ...answer }));
          continue;
        }
        const f = m.type === CT_NEW || m.type === CT_DELETE ? parseFlow(m) : undefined;
        if (f) record(m.type === CT_NEW ? 'new' : 'end', f);
      }
    }
    flush();
  };
  events.watch((err) => {
    if (events.closed) return;
    try {
      if (err) throw err;
      drain();
    } catch (e) {
      events.close();
      log.error(`--flow-log stopped: ${(e as Error).message}`);
    }
  });
  // Runs before the namespace's fd and the sockets close (the stack unwinds last in, first out).
  cleanups.push(async () => {
    if (events.closed) return;
    drain();
    // What is still open at exit: its counts so far, from a dump of the table.
    const sock = openNfnl(netnsFd);
    try {
      await dumpFlows(sock, (m) => {
        const f = parseFlow(m);
        if (f) record('end', f, true);
      });
    } finally {
      sock.close();
      flush();
    }
  });
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
