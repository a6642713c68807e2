// The registration load of the load and fault suites, in the lab of
// tests/lib/srv-lab.ts: 64 real source addresses on the client's link to the
// server, a generator (fixtures/load-register.mjs) that registers from all of
// them at once for a fixed time, and the checks that every 2xx it got is in
// the server's registry with the same addresses.
//
// Sources are addresses on one veth, not namespaces: the limiter keys on the
// TCP peer's address (api/client-address.ts, without --trusted-proxy), so 64
// addresses are 64 buckets, and each request really comes from its own
// address rather than from a header the server would have to be told to believe.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabProcess } from '../../lib/process.js';
import { Lab } from '../../lib/netns.js';
import { INET4, SRV_BIN, SUBNET6, srvLab, type SrvLab } from '../../lib/srv-lab.js';
import { startInternet } from '../../lib/srv-internet.js';
import { writeSecretFile } from '../../lib/wg.js';
import { waitFor } from '../../lib/wait.js';

const GENERATOR = fileURLToPath(new URL('../fixtures/load-register.mjs', import.meta.url));

/** The lab server's pools for load: room for every registration 30 s can make (the default /24 holds 253). */
/** The file a cage moves through the NAT during the load and over the faulty link. */
export const BIG = 50 * 1024 * 1024;
export const SOURCES = 64;

export interface LoadLab {
  l: SrvLab;
  /** SHA-256 of the BIG bytes the lab's internet serves on INET4:8080. */
  bigSha256: string;
  sources: string[];
  adminFile: string;
}

/** The server lab with its internet serving BIG bytes, SOURCES client addresses, and an admin token file. */
async function loadLab(lab: Lab, adminToken: string): Promise<LoadLab> {
  const l = await srvLab(lab);
  const { bigSha256 } = await startInternet(l.inet, INET4, BIG);
  const sources = await addSources(l, SOURCES);
  const adminFile = await writeSecretFile(l.dir, 'admin', `${adminToken}\n`);
  return { l, bigSha256, sources, adminFile };
}

export interface LoadSuite extends LoadLab {
  /** Returns `server`, stopped (within 10 s) once the running test ends. */
  own(server: LabProcess): LabProcess;
}

/**
 * Registers in the calling describe() the load lab, built before its tests and removed after them;
 * its fields are set from before() on.
 */
export function loadSuite(adminToken: string): LoadSuite {
  const lab = new Lab();
  const running: LabProcess[] = [];
  const suite = { own: (server: LabProcess) => (running.push(server), server) } as LoadSuite;
  before(async () => Object.assign(suite, await loadLab(lab, adminToken)));
  afterEach(async () => {
    for (const server of running.splice(0)) await server.stop(10_000);
  });
  after(() => lab.teardown());
  return suite;
}

export const LOAD_SUBNET = '10.200.0.0/16';
export const LOAD_MAX_PEERS = 65_000;
/** `up` flags for load: the pool above, and a per-source limit the machine, not the limiter, reaches first. */
export const LOAD_SERVER_ARGS = ['--subnet', LOAD_SUBNET, '--max-peers', String(LOAD_MAX_PEERS), '--register-rate', '1000000'];

/** The client namespace's interface towards the server, and its own address there. */
export async function clientLink(l: SrvLab): Promise<{ dev: string; address: string }> {
  const route = JSON.parse((await l.cli.ip(['-j', 'route', 'get', l.srvAddr])).stdout) as { dev: string; prefsrc: string }[];
  return { dev: route[0]!.dev, address: route[0]!.prefsrc };
}

/** `n` more addresses (.100 on) on the client's end of its link to the server, in that link's /24. */
export async function addSources(l: SrvLab, n: number): Promise<string[]> {
  if (n < 1 || n > 150) throw new Error(`addSources: 1-150 sources fit the link's /24, not ${n}`);
  const { dev, address } = await clientLink(l);
  const net = address.split('.').slice(0, 3).join('.');
  const sources = Array.from({ length: n }, (_, i) => `${net}.${100 + i}`);
  for (const a of sources) await l.cli.addAddress(dev, `${a}/24`);
  return sources;
}

/** One registration the generator tried: `t` ms after it started; status 0 when no HTTP answer came. */
export interface Outcome {
  key: string;
  /** The source address it came from. */
  src: string;
  status: number;
  t: number;
  a4?: string;
  a6?: string;
  error?: string;
}

export interface LoadSummary {
  ok: number;
  limited: number;
  error: number;
  other: number;
  elapsedMs: number;
  sources: number;
}

export interface Load {
  proc: LabProcess;
  /** The generator's latest counts: [elapsed ms, 2xx, 429, no answer, other statuses]. */
  progress(): [number, number, number, number, number];
  /** Waits for the generator's end (its duration plus a bound) and reads every outcome. */
  done(): Promise<{ summary: LoadSummary; outcomes: Outcome[] }>;
}

/** Starts the generator in the client namespace: `seconds` of registrations from every source at once. */
export async function startLoad(l: SrvLab, sources: string[], seconds: number, port = 8443): Promise<Load> {
  const out = join(await l.lab.tempDir(), 'outcomes.jsonl');
  const proc = l.cli.spawn(process.execPath, [GENERATOR, `http://${l.srvAddr}:${port}`, l.tokenFile, out, String(seconds), ...sources]);
  const progress = (): [number, number, number, number, number] => {
    const lines = proc
      .output()
      .split('\n')
      .filter((x) => x.startsWith('progress '));
    const last = lines.at(-1);
    return last ? (last.split(' ').slice(1).map(Number) as [number, number, number, number, number]) : [0, 0, 0, 0, 0];
  };
  const done = async () => {
    const line = await waitFor(() => /^done (.*)$/m.exec(proc.output())?.[1], {
      what: 'the load generator to finish',
      // Its duration, then at most one request timeout (10 s) per source loop, with room for a slow machine.
      timeoutMs: seconds * 1000 + 30_000,
      intervalMs: 200,
      describe: () => proc.describe(),
    });
    const outcomes = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .filter((x) => x !== '')
      .map((x) => JSON.parse(x) as Outcome);
    return { summary: JSON.parse(line) as LoadSummary, outcomes };
  };
  return { proc, progress, done };
}

/** One entry of `wirecagesrv peers list --json`. */
export interface PeerEntry {
  client_public_key: string;
  client_address: string;
  client_address6: string;
}

/** Every registered peer, as the admin sees it (`wirecagesrv peers list --json` from the client namespace). */
export async function listPeers(l: SrvLab, adminFile: string, port = 8443): Promise<PeerEntry[]> {
  const r = await l.cli.runOrThrow(
    process.execPath,
    [SRV_BIN, 'peers', 'list', '--json', '--admin-token-file', adminFile, '--api', `http://${l.srvAddr}:${port}`],
    {
      env: { PATH: process.env.PATH, HOME: l.dir },
      timeoutMs: 30_000,
    },
  );
  return JSON.parse(r.stdout) as PeerEntry[];
}

/**
 * Every 2xx answer is in the registry with the addresses it gave (the answer's prefix dropped), and no
 * address went to two keys. Returns the registry's peers that no 2xx accounts for.
 */
export function assertAnswersKept(outcomes: Outcome[], peers: PeerEntry[]): PeerEntry[] {
  const byKey = new Map(peers.map((p) => [p.client_public_key, p]));
  const answered = outcomes.filter((o) => o.status >= 200 && o.status < 300);
  const owner = new Map<string, string>();
  let missing = 0;
  const changed: string[] = [];
  for (const o of answered) {
    const a4 = o.a4!.split('/')[0]!;
    const a6 = o.a6!.split('/')[0]!;
    for (const a of [a4, a6]) {
      const had = owner.get(a);
      assert.ok(had === undefined || had === o.key, `${a} was given to two keys: ${had} and ${o.key}`);
      owner.set(a, o.key);
    }
    const p = byKey.get(o.key);
    if (!p) missing++;
    else if (p.client_address !== a4 || p.client_address6 !== a6)
      changed.push(`${o.key}: answered ${a4} ${a6}, registry ${p.client_address} ${p.client_address6}`);
  }
  assert.equal(missing, 0, `${missing} of ${answered.length} registrations answered 2xx are missing from the registry`);
  assert.deepEqual(changed, [], 'registrations whose addresses changed');
  const keys = new Set(answered.map((o) => o.key));
  return peers.filter((p) => !keys.has(p.client_public_key));
}

/** The pid of the server itself (stage 2, the node process that holds the registry) under `up`'s process `root`. */
export async function stage2Pid(root: number): Promise<number> {
  const children = new Map<number, number[]>();
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = await readFile(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const visit = async (pid: number): Promise<void> => {
    try {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      // argv[0] node, argv[1] the stage-2 script: not the user-namespace helper that names it further on.
      if (argv[0] === process.execPath && argv[1]?.endsWith('/stage2/main.js')) found.push(pid);
    } catch {
      // gone meanwhile
    }
    for (const c of children.get(pid) ?? []) await visit(c);
  };
  await visit(root);
  if (found.length !== 1) throw new Error(`expected one stage-2 process under pid ${root}, found ${found.length}`);
  return found[0]!;
}

/** `PRAGMA integrity_check` of the registry, opened read-only (also while a server holds it). */
export async function registryIntegrity(path: string): Promise<string> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

/** Rows of a LOAD_SUBNET registry that are not whole: addresses other than their host index gives, no lease, a key not 32 bytes. */
export async function tornRows(path: string): Promise<string[]> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT public_key, host_index, address4, address6, lease_expires FROM peers').all() as {
      public_key: string;
      host_index: number;
      address4: string;
      address6: string;
      lease_expires: number | null;
    }[];
    const prefix4 = LOAD_SUBNET.split('.').slice(0, 2).join('.');
    const prefix6 = SUBNET6.split('::')[0]!;
    return rows
      .filter((r) => {
        const a4 = `${prefix4}.${r.host_index >> 8}.${r.host_index & 255}`;
        const a6 = `${prefix6}::${r.host_index.toString(16)}`;
        return r.address4 !== a4 || r.address6 !== a6 || !(r.lease_expires! > 0) || Buffer.from(r.public_key, 'base64').length !== 32;
      })
      .map((r) => JSON.stringify(r));
  } finally {
    db.close();
  }
}
