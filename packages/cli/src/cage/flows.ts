// `wirecage ps NAME --flows`, stage 2's side: the live rows of the cage's
// conntrack table, dumped from the cage's own network namespace when the
// control socket asks (control.ts, op "flows"). Only a cage started with
// --flow-log has conntrack on: without it the namespace tracks nothing and
// costs nothing (bench/results/flow-log.md), so the flag is what turns the
// table on, for this view as for the log. Loaded only when asked.
import { isIPv6 } from 'node:net';
import { parseFlow } from './flow-log-conntrack.js';
import { dumpFlows, openNfnl } from './flow-log-kernel.js';
import { attrsOf, type NlMessage } from './flow-log-netlink.js';
import { localAddresses } from './flow-log.js';
import type { LiveFlow } from './flows-format.js';

const CTA_STATUS = 3;
const CTA_PROTOINFO = 4;
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_TCP_STATE = 1;
const CTA_TIMESTAMP = 20;
const CTA_TIMESTAMP_START = 1;
const IPS_SEEN_REPLY = 1 << 1;
const IPS_ASSURED = 1 << 2;

// enum tcp_conntrack, in the kernel's order.
const TCP_STATES = ['none', 'syn-sent', 'syn-recv', 'established', 'fin-wait', 'close-wait', 'last-ack', 'time-wait', 'close', 'syn-sent2'];

/** TCP's tracked state; for the others whether an answer was seen (conntrack's "assured" once both ways flowed). */
function stateOf(m: NlMessage, protocol: string): string {
  const top = attrsOf(m.attrs);
  if (protocol === 'tcp') {
    const info = top.get(CTA_PROTOINFO);
    const tcp = info && attrsOf(info).get(CTA_PROTOINFO_TCP);
    const state = tcp && attrsOf(tcp).get(CTA_PROTOINFO_TCP_STATE);
    if (state?.length === 1) return TCP_STATES[state.readUInt8()] ?? `tcp-state-${state.readUInt8()}`;
  }
  const status = top.get(CTA_STATUS);
  if (status?.length !== 4) return 'unknown';
  const bits = status.readUInt32BE();
  if (bits & IPS_ASSURED) return 'assured';
  return bits & IPS_SEEN_REPLY ? 'replied' : 'unreplied';
}

/** When the kernel confirmed the entry (wall clock, ns), with nf_conntrack_timestamp on (enableConntrack turns it on). */
function startOf(m: NlMessage): number | null {
  const ts = attrsOf(m.attrs).get(CTA_TIMESTAMP);
  const start = ts && attrsOf(ts).get(CTA_TIMESTAMP_START);
  return start?.length === 8 ? Number(start.readBigUInt64BE() / 1_000_000n) : null;
}

/** Every flow in the cage's conntrack table now, but those between its own addresses (the flow log's rule). */
export async function liveFlows(netnsFd: number, addresses: readonly string[], nowMs = Date.now()): Promise<LiveFlow[]> {
  const local = localAddresses(addresses);
  const isLocal = (a: string) => local.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
  const rows: LiveFlow[] = [];
  const sock = openNfnl(netnsFd);
  try {
    await dumpFlows(sock, (m) => {
      const f = parseFlow(m);
      if (!f || (isLocal(f.src) && isLocal(f.dst))) return;
      const { id, ...tuple } = f;
      const start = startOf(m);
      rows.push({
        ...tuple,
        state: stateOf(m, f.protocol),
        start: start === null ? null : new Date(start).toISOString(),
        age: start === null ? null : Math.max(0, Math.floor((nowMs - start) / 1000)),
      });
    });
  } finally {
    sock.close();
  }
  return rows.sort((a, b) => (b.age ?? 0) - (a.age ?? 0));
}
