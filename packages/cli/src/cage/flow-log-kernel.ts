// The cage's netfilter, set up for the flow log. Conntrack only tracks a
// namespace once something there asks for it: an nf_tables rule with a `ct`
// expression does (the kernel's nf_ct_netns_get), and here it sits in a
// regular chain that no hook calls, so it never runs on a packet: the cost is
// conntrack's own (and one input rule that picks out DNS answers). nf_conntrack_acct makes the destroy events carry packet and
// byte counts. Made over nfnetlink as the namespace's root (stage 2), so the
// `nft` binary is not needed and the host's netfilter is never touched.
import { NetnsError, NfnlSocket, writeNetnsSysctl } from '@wirecage/netns';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_REQUEST,
  be32,
  messages,
  nest,
  nfMessage,
  str,
  type Attr,
  type NlMessage,
} from './flow-log-netlink.js';
import { DNS_LOG_GROUP, bindDnsLog } from './flow-log-dns.js';
import { dumpRequest } from './flow-log-conntrack.js';
import { WirecageError } from '../errors.js';

export class FlowLogError extends WirecageError {
  override name = 'FlowLogError';
}

const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWTABLE = 0;
const NFT_MSG_NEWCHAIN = 3;
const NFT_MSG_NEWRULE = 6;
const NFPROTO_INET = 1;
const TABLE = 'wirecage_flowlog';
const CHAIN = 'conntrack';
const DNS_CHAIN = 'dns_answers';
const NFT_REG_1 = 1;
const nft = (msg: number) => (NFNL_SUBSYS_NFTABLES << 8) | msg;

/**
 * The table, a chain without hook holding `ct state` (what `nft add rule inet T C ct state` loads
 * first), and a chain on the input hook with `udp sport 53 log group G`: DNS answers reach the
 * flow log through nfnetlink_log (flow-log-dns.ts), a rule run only on packets that come in.
 */
function flowLogRuleset(seq: number): { batch: Buffer; acked: number[] } {
  const ack = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
  const expr = (name: string, data: Attr[]) =>
    nest(1 /* NFTA_LIST_ELEM */, [str(1 /* NFTA_EXPR_NAME */, name), nest(2 /* NFTA_EXPR_DATA */, data)]);
  const cmpEq = (bytes: number[]) =>
    expr('cmp', [
      be32(1 /* SREG */, NFT_REG_1),
      be32(2 /* OP */, 0 /* NFT_CMP_EQ */),
      nest(3 /* DATA */, [{ type: 1 /* NFTA_DATA_VALUE */, value: Buffer.from(bytes) }]),
    ]);
  const ctState = expr('ct', [be32(1 /* NFTA_CT_DREG */, NFT_REG_1), be32(2 /* NFTA_CT_KEY */, 0 /* NFT_CT_STATE */)]);
  const udpSport53 = [
    expr('meta', [be32(1 /* NFTA_META_DREG */, NFT_REG_1), be32(2 /* NFTA_META_KEY */, 16 /* NFT_META_L4PROTO */)]),
    cmpEq([17]),
    expr('payload', [
      be32(1 /* DREG */, NFT_REG_1),
      be32(2 /* BASE */, 2 /* transport header */),
      be32(3 /* OFFSET */, 0),
      be32(4 /* LEN */, 2),
    ]),
    cmpEq([0, 53]),
  ];
  const logGroup = expr('log', [{ type: 1 /* NFTA_LOG_GROUP */, value: Buffer.from([DNS_LOG_GROUP >> 8, DNS_LOG_GROUP & 0xff]) }]);
  const rule = (chain: string, exprs: Attr[], s: number) =>
    nfMessage(nft(NFT_MSG_NEWRULE), ack | NLM_F_APPEND, s, NFPROTO_INET, [
      str(1 /* NFTA_RULE_TABLE */, TABLE),
      str(2 /* NFTA_RULE_CHAIN */, chain),
      nest(4 /* NFTA_RULE_EXPRESSIONS */, exprs),
    ]);
  const parts = [
    nfMessage(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, [], NFNL_SUBSYS_NFTABLES),
    nfMessage(nft(NFT_MSG_NEWTABLE), ack, seq + 1, NFPROTO_INET, [str(1 /* NFTA_TABLE_NAME */, TABLE)]),
    nfMessage(nft(NFT_MSG_NEWCHAIN), ack, seq + 2, NFPROTO_INET, [
      str(1 /* NFTA_CHAIN_TABLE */, TABLE),
      str(3 /* NFTA_CHAIN_NAME */, CHAIN),
    ]),
    rule(CHAIN, [ctState], seq + 3),
    nfMessage(nft(NFT_MSG_NEWCHAIN), ack, seq + 4, NFPROTO_INET, [
      str(1 /* NFTA_CHAIN_TABLE */, TABLE),
      str(3 /* NFTA_CHAIN_NAME */, DNS_CHAIN),
      nest(4 /* NFTA_CHAIN_HOOK */, [be32(1 /* NFTA_HOOK_HOOKNUM */, 1 /* NF_INET_LOCAL_IN */), be32(2 /* NFTA_HOOK_PRIORITY */, 0)]),
      str(7 /* NFTA_CHAIN_TYPE */, 'filter'),
    ]),
    rule(DNS_CHAIN, [...udpSport53, logGroup], seq + 5),
    nfMessage(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 6, 0, [], NFNL_SUBSYS_NFTABLES),
  ];
  return { batch: Buffer.concat(parts), acked: [seq + 1, seq + 2, seq + 3, seq + 4, seq + 5] };
}

const errnoName = (errno: number) => new NetnsError(errno, 'netlink').code;

/** Sends a request and reads its answers until `done` says so; the kernel answers while sending, so they wait already. */
async function exchange(sock: NfnlSocket, request: Buffer, done: (m: NlMessage) => boolean, what: string): Promise<void> {
  sock.send(request);
  // A dump is filled as it is read: each read makes the next part. Bounded, never expected to wait.
  const deadline = Date.now() + 5000;
  for (;;) {
    const d = sock.read();
    if (d === 'overflow') throw new FlowLogError(`${what}: the kernel dropped its answer (ENOBUFS)`);
    if (d === 'empty') {
      if (Date.now() > deadline) throw new FlowLogError(`${what}: no answer from the kernel in 5 s`);
      await new Promise((r) => setImmediate(r));
      continue;
    }
    for (const m of messages(d)) if (done(m)) return;
  }
}

/**
 * Makes the cage's namespace track connections with counters. Fails with a FlowLogError saying
 * what the kernel lacks (nf_tables, ctnetlink, conntrack accounting).
 */
export async function enableConntrack(netnsFd: number): Promise<void> {
  const sock = openNfnl(netnsFd);
  try {
    const { batch, acked } = flowLogRuleset(1);
    const waiting = new Set(acked);
    await exchange(
      sock,
      batch,
      (m) => {
        if (m.type !== NLMSG_ERROR) return false;
        if (m.errno) {
          const hint = m.errno === 95 || m.errno === 2 ? ' (is the kernel built without nf_tables, nft_ct, nft_log or nf_conntrack?)' : '';
          throw new FlowLogError(`--flow-log: the kernel refused the cage's conntrack rule: ${errnoName(m.errno)}${hint}`);
        }
        waiting.delete(m.seq);
        return waiting.size === 0;
      },
      '--flow-log: setting up conntrack',
    );
    try {
      writeNetnsSysctl(netnsFd, '/proc/sys/net/netfilter/nf_conntrack_acct', '1');
    } catch (err) {
      throw new FlowLogError(`--flow-log: cannot turn on conntrack accounting in the cage: ${(err as Error).message}`);
    }
    // Each entry's start time, for `ps NAME --flows`' age; a kernel without it only loses the age.
    try {
      writeNetnsSysctl(netnsFd, '/proc/sys/net/netfilter/nf_conntrack_timestamp', '1');
    } catch {
      // no timestamps: rows show no age
    }
    // Proves ctnetlink answers (a kernel may have conntrack without it): its events would never come.
    await dumpFlows(sock, () => {});
  } finally {
    sock.close();
  }
}

/** A netfilter netlink socket in the cage; a kernel without nfnetlink fails here. */
export function openNfnl(netnsFd: number, groups: readonly number[] = []): NfnlSocket {
  try {
    return NfnlSocket.open(netnsFd, groups);
  } catch (err) {
    const hint = err instanceof NetnsError && err.code === 'EPROTONOSUPPORT' ? ' (is the kernel built without nfnetlink?)' : '';
    throw new FlowLogError(`--flow-log: cannot open netfilter's netlink socket in the cage: ${(err as Error).message}${hint}`);
  }
}

/** Makes nfnetlink_log send the DNS answers the cage's rule logs to `sock`. */
export async function receiveDnsAnswers(sock: NfnlSocket): Promise<void> {
  const seq = 50;
  await exchange(
    sock,
    bindDnsLog(seq),
    (m) => {
      if (m.type !== NLMSG_ERROR || m.seq !== seq) return false;
      if (m.errno) {
        const hint = m.errno === 95 || m.errno === 2 ? ' (is the kernel built without nfnetlink_log?)' : '';
        throw new FlowLogError(`--flow-log: cannot receive the cage's DNS answers: ${errnoName(m.errno)}${hint}`);
      }
      return true;
    },
    "--flow-log: binding the DNS answers' log group",
  );
}

/** Every entry of the namespace's conntrack table, through `onEntry`. */
export async function dumpFlows(sock: NfnlSocket, onEntry: (m: NlMessage) => void): Promise<void> {
  const seq = 100;
  await exchange(
    sock,
    dumpRequest(seq),
    (m) => {
      if (m.seq !== seq) return false;
      if (m.type === NLMSG_ERROR && m.errno) {
        const hint = m.errno === 95 || m.errno === 2 ? ' (is the kernel built without nf_conntrack_netlink?)' : '';
        throw new FlowLogError(`--flow-log: reading the cage's conntrack table failed: ${errnoName(m.errno)}${hint}`);
      }
      if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) return true;
      onEntry(m);
      return false;
    },
    '--flow-log: reading the conntrack table',
  );
}
