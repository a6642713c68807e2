// Registration load for bench/server.bench.ts, run inside the lab's client
// namespace (`ip netns exec`): POST /v1/register with a fresh random key per
// request over `concurrency` keep-alive connections, until `seconds` have
// passed or `count` registrations succeeded, whichever comes first (0 = no
// limit). The token comes on stdin, never argv. Prints one JSON line:
//   {"ok": N, "failed": N, "seconds": S, "statuses": {"200": N, ...}, "firstError": "..."}
//   node register-load.mjs <url> <concurrency> <seconds> <count>  < token
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { postRegister } from './post-register.mjs';

const [url, concurrencyText, secondsText, countText] = process.argv.slice(2);
if (!url || !concurrencyText || !secondsText || countText === undefined) {
  process.stderr.write('usage: register-load.mjs <url> <concurrency> <seconds> <count> < token\n');
  process.exit(2);
}
const token = readFileSync(0, 'utf8').trim();
const concurrency = Number(concurrencyText);
const deadline = Date.now() + Number(secondsText) * 1000;
const target = Number(countText);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const statuses = {};
let ok = 0;
let failed = 0;
let started = 0;
let firstError;

async function register() {
  const r = await postRegister(url, agent, token);
  if (r.error !== undefined) {
    failed++;
    firstError ??= r.error;
    return;
  }
  statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  if (r.status === 200) ok++;
  else {
    failed++;
    firstError ??= `HTTP ${r.status}: ${r.text.trim()}`;
  }
}

const more = () => Date.now() < deadline && (target === 0 || started < target) && (failed === 0 || ok > 0);
async function worker() {
  while (more()) {
    started++;
    await register();
  }
}

const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
agent.destroy();
process.stdout.write(`${JSON.stringify({ ok, failed, seconds, statuses, firstError })}\n`);
