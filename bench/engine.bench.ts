// Engine micro-benchmark (single thread): handshakes per second, and
// transport encrypt+decrypt packets per second through the engine's data
// functions next to raw sodium-native AEAD measured in the same run.
// Writes bench/results/engine.md and prints the table.
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import sodium from 'sodium-native';
import {
  Handshake,
  KeypairTable,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  decryptTransport,
  deriveSession,
  encryptTransport,
  generatePrivateKey,
  publicKeyOf,
} from '@wirecage/wg-engine';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

function measure(fn: () => void, batch = 256): number {
  // Warm up the JIT, then count whole batches for SECONDS.
  for (let i = 0; i < batch * 4; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(SECONDS * 1e9);
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

function handshakeRate(): number {
  const ki = generatePrivateKey();
  const kr = generatePrivateKey();
  const ini = { privateKey: ki, publicKey: publicKeyOf(ki) };
  const res = { privateKey: kr, publicKey: publicKeyOf(kr) };
  const hsI = new Handshake(res.publicKey);
  hsI.precompute(ini);
  const hsR = new Handshake(ini.publicKey);
  hsR.precompute(res);
  let wall = Date.now();
  let now = 0;
  return measure(() => {
    wall += 1000;
    now += 1000;
    const m1 = createInitiation(ini, hsI, 1, wall)!;
    const r1 = consumeInitiation(res, m1, () => hsR, now);
    if (!r1.ok) throw new Error(r1.reason);
    const m2 = createResponse(hsR, 2)!;
    const r2 = consumeResponse(ini, hsI, m2);
    if (!r2.ok) throw new Error(r2.reason);
    deriveSession(hsI);
    deriveSession(hsR);
  }, 16);
}

function engineRate(size: number): number {
  const table = new KeypairTable(2);
  const key = generatePrivateKey();
  const tx = table.install(key, key, 0);
  const rx = table.install(key, key, 0);
  const packet = Buffer.alloc(size, 7);
  return measure(() => {
    const msg = encryptTransport(table, tx, 1, packet, 1420)!;
    if (decryptTransport(table, rx, msg) < 0) throw new Error('decrypt failed');
  });
}

function rawRate(size: number): number {
  const key = generatePrivateKey();
  const nonce = Buffer.alloc(12);
  const m = Buffer.alloc(Math.ceil(size / 16) * 16, 7);
  const c = Buffer.alloc(m.length + 16);
  const out = Buffer.alloc(m.length);
  let counter = 0;
  return measure(() => {
    nonce.writeUInt32LE(counter++, 4);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, null, null, nonce, key);
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, c, null, nonce, key);
  });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rows: string[] = [];
const hs = handshakeRate();
rows.push(`| handshakes (initiation + response, both sides) | ${fmt(hs)} /s | | |`);
for (const size of [64, 1420]) {
  const raw = rawRate(size);
  const eng = engineRate(size);
  rows.push(`| transport encrypt+decrypt, ${size} B | ${fmt(eng)} pkt/s | ${fmt(raw)} pkt/s | ${((eng / raw) * 100).toFixed(0)}% |`);
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const table = [
  `Engine micro-benchmark, one thread, ${SECONDS} s per row, Node ${process.version}, ${cpu} (${os.cpus().length} cores), ${new Date().toISOString().slice(0, 10)}.`,
  '',
  '| what | wg-engine | raw sodium-native AEAD | engine / raw |',
  '|---|---|---|---|',
  ...rows,
  '',
].join('\n');
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/engine.md', import.meta.url), table);
console.log(table);
