// The test side of engine-host.ts: starts it inside a lab namespace with an
// IPC channel, answers ICMP echo requests addressed to the engine's tunnel
// addresses (the engine has no kernel stack behind it), and collects what
// the engine delivers.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Lab, Netns } from '../lib/netns.js';
import { waitFor } from '../lib/wait.js';
import { parseEchoReply } from './packets.js';

const HOST_SCRIPT = fileURLToPath(new URL('./engine-host.ts', import.meta.url));

type HostMessage =
  | { type: 'ready'; port: number; socket: string }
  | { type: 'tun'; packet: string }
  | { type: 'handshake'; peer: string }
  | { type: 'stats'; drops: Record<string, number>; peers: number };

export class EngineProcess {
  readonly received: Buffer[] = [];
  handshakes = 0;
  private stderr = '';
  private lastStats: Extract<HostMessage, { type: 'stats' }> | null = null;

  private constructor(
    readonly ns: Netns,
    readonly ifname: string,
    readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(lab: Lab, ns: Netns, ifname: string): Promise<EngineProcess> {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', HOST_SCRIPT, ifname], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env },
    });
    lab.onTeardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const ready = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`engine host exited (${code}) before it was ready:\n${stderr}`)));
      child.on('message', (m: HostMessage) => {
        if (m.type === 'ready') resolve(m);
      });
    });
    const e = new EngineProcess(ns, ifname, child, ready.port);
    e.stderr = stderr;
    child.stderr!.on('data', (s: string) => (e.stderr += s));
    child.on('message', (m: HostMessage) => e.onMessage(m));
    return e;
  }

  private onMessage(m: HostMessage): void {
    if (m.type === 'tun') this.received.push(Buffer.from(m.packet, 'hex'));
    else if (m.type === 'handshake') this.handshakes++;
    else if (m.type === 'stats') this.lastStats = m;
  }

  send(packet: Buffer): void {
    this.child.send({ type: 'send', packet: packet.toString('hex') });
  }

  async drops(): Promise<Record<string, number>> {
    this.lastStats = null;
    this.child.send({ type: 'stats' });
    const s = await waitFor(() => this.lastStats, { what: 'engine stats', timeoutMs: 5000 });
    return s.drops;
  }

  /** Sends echo requests until a reply with this id arrives (a handshake may eat the first ones' time). */
  async pingUntilReply(build: (seq: number) => Buffer, id: number, timeoutMs = 10_000): Promise<void> {
    let seq = 0;
    let lastSent = -Infinity;
    await waitFor(
      () => {
        if (this.received.some((p) => parseEchoReply(p)?.id === id)) return true;
        // Poll often, but resend only every half second.
        if (performance.now() - lastSent >= 500) {
          this.send(build(seq++));
          lastSent = performance.now();
        }
        return false;
      },
      { what: `an ICMP echo reply with id ${id} through the engine`, timeoutMs, intervalMs: 5, describe: () => this.stderr },
    );
  }

  /** Answers echo requests delivered by the engine, as a host stack would. */
  answerEchoRequests(): void {
    this.child.on('message', (m: HostMessage) => {
      if (m.type !== 'tun') return;
      const p = Buffer.from(m.packet, 'hex');
      const reply = echoReplyFor(p);
      if (reply) this.send(reply);
    });
  }
}

/** Turns an ICMP echo request into its reply (addresses swapped, type changed, checksums fixed). */
function echoReplyFor(p: Buffer): Buffer | null {
  const r = Buffer.from(p);
  if (p[0]! >> 4 === 4) {
    const ihl = (p[0]! & 0x0f) * 4;
    if (p[9] !== 1 || p[ihl] !== 8) return null;
    p.copy(r, 12, 16, 20);
    p.copy(r, 16, 12, 16);
    r[ihl] = 0;
    // Echo reply differs from the request only in the type byte: adjust the checksum incrementally.
    let sum = r.readUInt16BE(ihl + 2) + 0x0800;
    sum = (sum & 0xffff) + (sum >> 16);
    r.writeUInt16BE(sum & 0xffff, ihl + 2);
    return r;
  }
  if (p[0]! >> 4 === 6) {
    if (p[6] !== 58 || p[40] !== 128) return null;
    p.copy(r, 8, 24, 40);
    p.copy(r, 24, 8, 24);
    r[40] = 129;
    let sum = r.readUInt16BE(42) + 0xfeff; // one's-complement subtract 0x0100
    sum = (sum & 0xffff) + (sum >> 16);
    r.writeUInt16BE(sum & 0xffff, 42);
    return r;
  }
  return null;
}
