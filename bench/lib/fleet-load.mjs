// Registration load for bench/fleet.bench.ts, run inside the fleet lab's
// client namespace: POST /v1/register with a fresh random key per request,
// `concurrency` keep-alive connections to each API given, all at once, until
// `seconds` have passed or `count` registrations were started in all (0 = no
// limit). Unlike register-load.mjs (one API, counts only) it keeps every
// answer's addresses, so the bench can check that no address went to two keys.
// The token comes on stdin, never argv. Prints one JSON line:
//   {"ok": N, "failed": N, "seconds": S, "cpuSeconds": S, "statuses": {...}, "firstError": "...",
//    "perApi": {"<api>": N}, "peers": [["<key>", "<address>", "<address6>"], ...]}
//   node fleet-load.mjs <concurrency per API> <seconds> <count> <API base URL>...  < token
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { postRegister } from './post-register.mjs';

const [concurrencyText, secondsText, countText, ...apis] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
const target = Number(countText);
if (!(concurrency >= 1) || !(seconds > 0) || !(target >= 0) || apis.length === 0) {
  process.stderr.write('usage: fleet-load.mjs <concurrency per API> <seconds> <count> <API base URL>... < token\n');
  process.exit(2);
}
const token = readFileSync(0, 'utf8').trim();
const deadline = Date.now() + seconds * 1000;
const statuses = {};
const perApi = Object.fromEntries(apis.map((a) => [a, 0]));
const peers = [];
let failed = 0;
let started = 0;
let firstError;

async function register(api, agent) {
  const r = await postRegister(`${api}/v1/register`, agent, token);
  if (r.error !== undefined) {
    failed++;
    firstError ??= `${api}: ${r.error}`;
    return;
  }
  statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  if (r.status === 200) {
    const a = JSON.parse(r.text);
    peers.push([r.key, a.client_address, a.client_address6 ?? null]);
    perApi[api]++;
  } else {
    failed++;
    firstError ??= `${api}: HTTP ${r.status}: ${r.text.trim()}`;
  }
}

// A run of failures with no success is a broken server, not load: stop rather than spin.
const more = () => Date.now() < deadline && (target === 0 || started < target) && (failed === 0 || peers.length > 0);
async function worker(api, agent) {
  while (more()) {
    started++;
    await register(api, agent);
  }
}

const agents = apis.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await Promise.all(apis.flatMap((api, i) => Array.from({ length: concurrency }, () => worker(api, agents[i]))));
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
for (const a of agents) a.destroy();
process.stdout.write(
  `${JSON.stringify({ ok: peers.length, failed, seconds: elapsed, cpuSeconds: (cpu.user + cpu.system) / 1e6, statuses, firstError, perApi, peers })}\n`,
);
