// Cage start-up: wall time of `wirecage run -c lab.conf -- true` (namespaces,
// TUN, handshake with a wireguard-go server and the command included) next to
// `unshare -Urn true` in the same run, median of 20 (hyperfine), and the peak
// RSS of the largest wirecage process. The lab lives in its own namespaces.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../tests/lib/netns.js';
import { generateKeyPair } from '../tests/lib/wg.js';
import { startWireguardGo } from '../tests/lib/wireguard-go.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const BIN = fileURLToPath(new URL('../packages/cli/bin/run.js', import.meta.url));

const lab = new Lab();
try {
  const cli = await lab.namespace('cli');
  const srv = await lab.namespace('srv');
  const link = await lab.veth(cli, srv);
  const dir = await lab.tempDir();
  const client = await generateKeyPair(dir, 'client');
  const go = await startWireguardGo(srv, {
    addresses: ['10.201.0.1/24'],
    peers: [{ publicKey: client.publicKey, allowedIps: ['10.201.0.2/32'] }],
  });
  const conf = join(dir, 'lab.conf');
  writeFileSync(
    conf,
    `[Interface]\nPrivateKey = ${readFileSync(client.privateKeyFile, 'utf8').trim()}\nAddress = 10.201.0.2/32\nDNS = 10.201.0.1\n\n` +
      `[Peer]\nPublicKey = ${go.publicKey}\nEndpoint = ${go.endpoint(link.b.v4!)}\nAllowedIPs = 10.201.0.0/24\n`,
    { mode: 0o600 },
  );
  const wirecage = `${process.execPath} ${BIN} run -c ${conf} -- true`;
  const json = join(dir, 'hyperfine.json');
  await cli.runOrThrow('hyperfine', ['-N', '--warmup', '2', '--runs', String(RUNS), '--export-json', json, wirecage, 'unshare -Urn true'], {
    timeoutMs: 600_000,
  });
  const results = JSON.parse(readFileSync(json, 'utf8')).results as { command: string; median: number; mean: number; min: number; max: number }[];
  const rss = await cli.runOrThrow('/usr/bin/time', ['-f', '%M', ...wirecage.split(' ')]);
  const peakKb = Number(rss.stderr.trim().split('\n').pop());
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  const [w, u] = results;
  const table = [
    `Cage start-up, ${RUNS} runs each (hyperfine), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| command | median | min | max |',
    '|---|---|---|---|',
    `| \`wirecage run -c lab.conf -- true\` (handshake included) | ${ms(w!.median)} | ${ms(w!.min)} | ${ms(w!.max)} |`,
    `| \`unshare -Urn true\` | ${ms(u!.median)} | ${ms(u!.min)} | ${ms(u!.max)} |`,
    '',
    `Peak RSS of the largest wirecage process: ${(peakKb / 1024).toFixed(0)} MiB.`,
    '',
  ].join('\n');
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/cage-startup.md', import.meta.url), table);
  console.log(table);
} finally {
  await lab.teardown();
}
