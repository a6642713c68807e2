// One DNS query over UDP to the upstreams, in order: a fresh socket in the
// host network per attempt (a random source port, and a random query id the
// answer must carry, against spoofed answers), closed when the answer comes,
// when the upstream refuses (ICMP), or at the timeout; then the next
// upstream. Nothing outlives the query.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { firstQuestion, isResponse, messageId, withId } from './dns-message.js';
import type { DnsUpstream } from './dns-upstream.js';

export type AttemptResult = { answer: Buffer } | { failure: 'timeout' | 'error'; detail: string };

/** Open upstream sockets, so close() can cut queries in flight. */
export class UpstreamSockets {
  private readonly open = new Set<() => void>();

  get size(): number {
    return this.open.size;
  }

  /** Asks one upstream; the answer comes back with the client's own id. */
  ask(upstream: DnsUpstream, query: Buffer, timeoutMs: number): Promise<AttemptResult> {
    const clientId = messageId(query);
    const ourId = randomInt(0x10000);
    const question = firstQuestion(query);
    const sock = dgram.createSocket({ type: upstream.address.includes(':') ? 'udp6' : 'udp4' });
    return new Promise<AttemptResult>((resolve) => {
      const finish = (r: AttemptResult) => {
        if (!this.open.delete(stop)) return;
        clearTimeout(timer);
        sock.close();
        resolve(r);
      };
      const stop = () => finish({ failure: 'error', detail: 'the forwarder is closing' });
      this.open.add(stop);
      const timer = setTimeout(() => finish({ failure: 'timeout', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
      // A connected socket hears only from the upstream, and learns of its ICMP errors.
      sock.on('message', (msg) => {
        if (!isResponse(msg) || messageId(msg) !== ourId) return;
        const q = firstQuestion(msg);
        if (question && q && !q.equals(question)) return;
        finish({ answer: withId(msg, clientId) });
      });
      sock.on('error', (err: NodeJS.ErrnoException) => finish({ failure: 'error', detail: err.code ?? err.message }));
      sock.connect(upstream.port, upstream.address, ((err?: Error) => {
        if (err) {
          finish({ failure: 'error', detail: (err as NodeJS.ErrnoException).code ?? err.message });
          return;
        }
        sock.send(withId(query, ourId), (e) => {
          if (e) finish({ failure: 'error', detail: (e as NodeJS.ErrnoException).code ?? e.message });
        });
      }) as () => void);
    });
  }

  closeAll(): void {
    for (const stop of [...this.open]) stop();
  }
}
