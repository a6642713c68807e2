// A throwaway PostgreSQL for the suites (`@wirecage/netns/lab`): Debian's
// server binaries, a cluster in a temp dir owned by a system user made for it
// (initdb and postgres refuse to run as root), reachable only on a unix socket
// in a directory of its own (no TCP at all: listen_addresses is empty), trust
// authentication, no fsync unless asked for. wirecagesrv's registry suites and the fleet labs in
// tests/ start theirs here. stop() removes the server, its files and its user,
// and a process that exits without calling it still kills the server.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './lab-probes.js';

export interface LabPostgres {
  /** The cluster's superuser (and the system user it runs as). */
  readonly user: string;
  /** The directory holding the server's socket. */
  readonly socketDir: string;
  /** `postgres://USER@/DB?host=SOCKETDIR` (default: the `postgres` database). */
  url(db?: string): string;
  /** A new empty database; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs `sql` in `db` with psql as the superuser; its output (unaligned, tuples only). */
  psql(db: string, sql: string): Promise<string>;
  /** Stops the server (fast shutdown, SIGKILL after a bound) and removes its files and its user. */
  stop(): Promise<void>;
}

const PG_LIB = '/usr/lib/postgresql';
const READY_MS = 30_000;
const STOP_MS = 10_000;

/** The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string {
  const majors = existsSync(PG_LIB) ? readdirSync(PG_LIB).filter((v) => /^\d+$/.test(v)) : [];
  for (const v of majors.sort((a, b) => Number(b) - Number(a))) {
    const bin = join(PG_LIB, v, 'bin');
    if (['initdb', 'postgres', 'psql'].every((b) => existsSync(join(bin, b)))) return bin;
  }
  throw new Error(`no PostgreSQL server under ${PG_LIB}/<version>/bin: install Debian's postgresql package (scripts/setup does)`);
}

function run(file: string, args: string[], opts: { uid?: number; gid?: number; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${file} ${args.slice(0, 2).join(' ')}... exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

interface Owner {
  name: string;
  uid: number;
  gid: number;
  /** Removes the user; a no-op when the cluster runs as the caller. */
  remove(): void;
}

/** A system user for the cluster when running as root (initdb refuses root); the caller otherwise. */
function clusterOwner(): Owner {
  if (process.getuid?.() !== 0) {
    const name = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
    return { name, uid: process.getuid!(), gid: process.getgid!(), remove: () => {} };
  }
  const name = `wcpg${randomBytes(4).toString('hex')}`;
  execFileSync('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' });
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { name, uid: id('-u'), gid: id('-g'), remove: () => execFileSync('userdel', [name], { stdio: 'pipe' }) };
}

/** Resolves once postmaster.pid says "ready" (PostgreSQL 10+ writes its status there); rejects if the server exits first. */
async function untilReady(server: ChildProcess, dataDir: string, logFile: string): Promise<void> {
  let exited: string | null = null;
  server.once('exit', (code, signal) => (exited = `exited (${signal ?? code})`));
  await waitFor(
    'PostgreSQL to accept connections',
    () => {
      if (exited) throw new Error(`PostgreSQL ${exited} while starting: ${readFileSync(logFile, 'utf8').trim().slice(-2000)}`);
      const pidFile = join(dataDir, 'postmaster.pid');
      if (!existsSync(pidFile)) return undefined;
      return readFileSync(pidFile, 'utf8').split('\n')[7]?.trim() === 'ready' ? true : undefined;
    },
    READY_MS,
  );
}

function startServer(
  bin: string,
  owner: Owner,
  base: string,
  durable: boolean,
): { server: ChildProcess; dataDir: string; socketDir: string; logFile: string } {
  const dataDir = join(base, 'data');
  const socketDir = join(base, 'socket');
  const logFile = join(base, 'postgres.log');
  const log = openSync(logFile, 'a');
  const settings = ['listen_addresses=', `unix_socket_directories=${socketDir}`, 'max_connections=200', 'shared_buffers=32MB'];
  // A test's cluster dies with the test: what a power cut would lose does not matter, and syncs cost time.
  if (!durable) settings.push('fsync=off', 'synchronous_commit=off', 'full_page_writes=off');
  const server = spawn(join(bin, 'postgres'), ['-D', dataDir, ...settings.flatMap((s) => ['-c', s])], {
    uid: owner.uid,
    gid: owner.gid,
    cwd: base,
    stdio: ['ignore', log, log],
    env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' },
  });
  closeSync(log);
  return { server, dataDir, socketDir, logFile };
}

export interface LabPostgresOptions {
  /** Commits synced to disk, as a production server has them (benchmarks); default off (fsync=off). */
  durable?: boolean;
}

/** Starts a throwaway cluster and waits until it accepts connections. */
export async function startLabPostgres(opts: LabPostgresOptions = {}): Promise<LabPostgres> {
  const bin = postgresBinDir();
  const owner = clusterOwner();
  const base = mkdtempSync(join(tmpdir(), 'wirecage-pg-'));
  let server: ChildProcess | null = null;
  const cleanup = (): void => {
    process.off('exit', killAtExit);
    rmSync(base, { recursive: true, force: true });
    owner.remove();
  };
  // Exit handlers cannot wait: kill, then remove what can be removed at once (best effort).
  const killAtExit = (): void => {
    server?.kill('SIGKILL');
    try {
      cleanup();
    } catch {
      // the user may still own a dying backend for a moment; nothing more can be done at exit
    }
  };
  try {
    for (const [dir, mode] of [
      ['data', 0o700],
      ['socket', 0o755],
    ] as const) {
      mkdirSync(join(base, dir), { mode });
      chownSync(join(base, dir), owner.uid, owner.gid);
    }
    // A 0700 temp dir would keep the cluster's user out of its own files.
    execFileSync('chmod', ['0755', base]);
    const init = ['-D', join(base, 'data'), '-U', owner.name, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'];
    await run(join(bin, 'initdb'), init, { uid: owner.uid, gid: owner.gid, cwd: base });
    const started = startServer(bin, owner, base, opts.durable ?? false);
    server = started.server;
    process.on('exit', killAtExit);
    await untilReady(server, started.dataDir, started.logFile);
  } catch (err) {
    if (server) await stopServer(server);
    cleanup();
    throw err;
  }
  const running = server;
  return labHandle(bin, owner.name, join(base, 'socket'), async () => {
    await stopServer(running);
    cleanup();
  });
}

async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  // SIGINT: fast shutdown, which ends every backend before the postmaster exits.
  server.kill('SIGINT');
  const timer = setTimeout(() => server.kill('SIGKILL'), STOP_MS);
  await gone;
  clearTimeout(timer);
}

function labHandle(bin: string, user: string, socketDir: string, stop: () => Promise<void>): LabPostgres {
  const url = (db = 'postgres') => `postgres://${user}@/${db}?host=${socketDir}`;
  const psql = (db: string, sql: string) =>
    run(join(bin, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-U', user, '-d', db, '-c', sql]);
  let stopped: Promise<void> | null = null;
  return {
    user,
    socketDir,
    url,
    psql,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)} must be [a-z_][a-z0-9_]*`);
      await psql('postgres', `CREATE DATABASE ${name}`);
      return url(name);
    },
    stop: () => (stopped ??= stop()),
  };
}
