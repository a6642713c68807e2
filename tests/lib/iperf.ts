// iperf3 in a lab: a fresh one-off server (iperf3 -s -1) for each client run,
// on a port of its own. One server shared by a file's runs refused the next
// client while it was still in the last test: it is done with a test only
// when the client's last control message arrives, and a caged client returns
// (and its cage goes) before that. Measured under load (tests/cage/
// dataplane.test.ts, 3 runs of 4 failed): the server logged its test complete
// at 06:01:29, its client returned at 06:01:30.07, and it listened again only
// at 06:01:33, refusing four clients in between with "the server is busy
// running a test"; iperf3 3.12 -J reports that with exit status 0 and no stream.
import type { Netns } from './netns.js';
import type { LabProcess } from './process.js';
import { waitFor } from './wait.js';

/** Ports in the lab's own namespace; each server gets the next, so a server still finishing holds none a later run needs. */
let nextPort = 5301;

export interface IperfServer {
  readonly port: number;
  readonly process: LabProcess;
  stop(): Promise<void>;
}

/** Starts `iperf3 -s -1` on address in ns and resolves once it listens. */
export async function startIperfServer(ns: Netns, address: string): Promise<IperfServer> {
  const port = nextPort++;
  const proc = ns.spawn('iperf3', ['-s', '-1', '-B', address, '-p', String(port)]);
  await waitFor(
    async () => {
      proc.assertRunning();
      return (await ns.run('ss', ['-Hltn', `sport = :${port}`])).stdout.includes(`:${port}`);
    },
    { what: `iperf3 to listen on ${address}:${port}`, timeoutMs: 10_000, describe: () => proc.describe() },
  );
  return {
    port,
    process: proc,
    stop: async () => {
      await proc.stop();
    },
  };
}

/** Runs `client(server)` against a fresh server in ns, and stops the server after. */
export async function withIperfServer<T>(ns: Netns, address: string, client: (server: IperfServer) => Promise<T>): Promise<T> {
  const server = await startIperfServer(ns, address);
  try {
    return await client(server);
  } finally {
    await server.stop();
  }
}

/** Parses iperf3 -J output; iperf3's own error (some, such as a busy server, exit 0) becomes a thrown one. */
export function iperfReport<T>(stdout: string): T {
  const report = JSON.parse(stdout) as T & { error?: string };
  if (report.error !== undefined) throw new Error(`iperf3: ${report.error}`);
  return report;
}
