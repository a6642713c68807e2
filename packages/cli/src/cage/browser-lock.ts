// Refuses to cage a browser whose profile is in use by the same browser
// running outside the cage.
//
// Browsers guard a profile with a lock that names the holder's pid, and trust
// that pid only when they can see it. Inside the cage (its own PID namespace)
// the outside browser's pid is invisible, so:
//   - Chromium (and every browser built on it) takes `SingletonLock`
//     (`<hostname>-<pid>`) for stale, deletes it and opens the profile a
//     second time beside the running instance: the profile is corrupted, or
//     the running instance gets the URL and loads it outside the tunnel;
//   - Firefox takes `lock` (`<ip>:+<pid>`) for stale too, then finds
//     `.parentlock` held (fcntl locks work across PID namespaces) and either
//     hands the URL to the running instance through its remote service (which
//     loads it outside the tunnel, and the caged command exits 0 as if all was
//     well) or waits on an "already running" dialog.
// So before the cage is built, while the caller's view of /proc still shows
// every process of the host, the profile the command will use is looked up
// the way the browser itself does, and its lock checked.
//
// What is recognised: the command's program itself (`chromium ...`, or a name
// that resolves through PATH and symlinks to a known browser, such as
// x-www-browser), not a browser started by a shell script or `env`. Locks
// whose pid belongs to another PID namespace (a browser in another cage)
// cannot be mapped to a process here and are not reported.
import { existsSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';

type Family = 'chromium' | 'firefox';

interface Browser {
  family: Family;
  /** The program's name as given (or resolved), for messages. */
  name: string;
  /** Chromium: the default user data dir under the config home. Firefox: the profile root, legacy and XDG forms. */
  dir: string;
  xdgDir?: string;
}

/** Chromium family: program name -> default user data dir relative to the config home. */
const CHROMIUM_DIRS: [RegExp, string][] = [
  [/^(chromium|chromium-browser|chromium-freeworld)$/, 'chromium'],
  [/^(google-chrome|google-chrome-stable|chrome)$/, 'google-chrome'],
  [/^google-chrome-beta$/, 'google-chrome-beta'],
  [/^(google-chrome-unstable|google-chrome-dev)$/, 'google-chrome-unstable'],
  [/^google-chrome-canary$/, 'google-chrome-canary'],
  [/^(brave|brave-browser|brave-browser-stable)$/, 'BraveSoftware/Brave-Browser'],
  [/^brave-browser-beta$/, 'BraveSoftware/Brave-Browser-Beta'],
  [/^brave-browser-nightly$/, 'BraveSoftware/Brave-Browser-Nightly'],
  [/^(microsoft-edge|microsoft-edge-stable|msedge)$/, 'microsoft-edge'],
  [/^microsoft-edge-beta$/, 'microsoft-edge-beta'],
  [/^microsoft-edge-dev$/, 'microsoft-edge-dev'],
  [/^(vivaldi|vivaldi-stable|vivaldi-bin)$/, 'vivaldi'],
];

/**
 * Firefox family: program name -> profile root: the legacy dot-dir under $HOME (used while it
 * exists) and, since Firefox 147, the XDG one under the config home.
 */
const FIREFOX_DIRS: [RegExp, string, string][] = [
  [
    /^(firefox|firefox-esr|firefox-bin|firefox-beta|firefox-nightly|firefox-devedition|firefox-developer-edition|iceweasel)$/,
    '.mozilla/firefox',
    'mozilla/firefox',
  ],
  [/^librewolf$/, '.librewolf', 'librewolf/librewolf'],
  [/^waterfox$/, '.waterfox', 'waterfox/waterfox'],
  [/^icecat$/, '.mozilla/icecat', 'mozilla/icecat'],
];

/** What the process holding a lock must look like (its comm or exe name) to be taken for a live browser. */
const LOOKS_LIKE: Record<Family, RegExp> = {
  chromium: /^(chromium|chrome|google-chrome|brave|msedge|microsoft-edge|vivaldi)/i,
  firefox: /^(firefox|librewolf|waterfox|icecat|iceweasel|geckomain)/i,
};

function classify(name: string): { family: Family; rel: string; xdg?: string } | null {
  const n = name.toLowerCase();
  for (const [re, rel] of CHROMIUM_DIRS) if (re.test(n)) return { family: 'chromium', rel };
  for (const [re, rel, xdg] of FIREFOX_DIRS) if (re.test(n)) return { family: 'firefox', rel, xdg };
  return null;
}

/** The program through PATH (as execvp finds it), or null. */
function which(program: string, env: NodeJS.ProcessEnv): string | null {
  if (program.includes('/')) return existsSync(program) ? resolve(program) : null;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, program);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

function identify(program: string, env: NodeJS.ProcessEnv): (Browser & { path: string | null }) | null {
  const path = which(program, env);
  let real: string | null;
  try {
    real = path === null ? null : realpathSync(path);
  } catch {
    real = null;
  }
  // The name as typed first (google-chrome is a script in /opt/google/chrome), then what it resolves to
  // (x-www-browser -> /usr/lib/firefox-esr/firefox-esr).
  for (const name of [basename(program), ...(real ? [basename(real)] : [])]) {
    const c = classify(name);
    if (c === null) continue;
    return { family: c.family, name: basename(program), dir: c.rel, xdgDir: c.xdg, path: real };
  }
  return null;
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

/** `~/x` and relative paths as the browser resolves them (relative to the command's working directory). */
function absolute(p: string, env: NodeJS.ProcessEnv): string {
  if (p === '~') return home(env);
  if (p.startsWith('~/')) return join(home(env), p.slice(2));
  return resolve(p);
}

// ---------------------------------------------------------------------------------------------
// Chromium

/**
 * Chromium's user data dir for these arguments. Chromium's command line takes switches only as
 * `--name=value` (or `-name=value`), anywhere before a bare `--`, the last one winning: in
 * `--user-data-dir DIR` the switch is empty (so the default dir is used) and DIR is opened as a URL.
 */
function chromiumUserDataDir(browser: Browser, args: readonly string[], env: NodeJS.ProcessEnv): string | null {
  let dir: string | undefined;
  let tempProfile = false;
  for (const a of args) {
    if (a === '--') break;
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(a);
    if (!m) continue;
    if (m[1] === 'user-data-dir') dir = m[2] ?? '';
    // Debian's /usr/bin/chromium wrapper: a fresh mktemp profile nobody else can hold.
    if (m[1] === 'temp-profile' && browser.name.startsWith('chromium')) tempProfile = true;
  }
  if (dir !== undefined && dir !== '') return absolute(dir, env);
  if (tempProfile) return null;
  // chrome_paths_linux.cc: $CHROME_CONFIG_HOME, else $XDG_CONFIG_HOME, else ~/.config.
  const configHome = env.CHROME_CONFIG_HOME || env.XDG_CONFIG_HOME || join(home(env), '.config');
  return join(configHome, browser.dir);
}

function chromiumLock(browser: Browser, dir: string): string | null {
  const lock = join(dir, 'SingletonLock');
  let target: string;
  try {
    target = readlinkSync(lock);
  } catch {
    return null; // no lock (or not a symlink): nobody holds the profile
  }
  // `<hostname>-<pid>`; the host name may hold dashes itself.
  const m = /^(.*)-(\d+)$/.exec(target);
  if (!m) return null;
  // A lock made on another machine (a home on NFS) is that machine's business, and the caged browser
  // sees the same host name, so it handles it as it would outside.
  if (m[1] !== hostname()) return null;
  const pid = Number(m[2]);
  const proc = liveProcess(pid, LOOKS_LIKE.chromium);
  if (proc === null) return null;
  return (
    `the ${browser.name} profile ${dir} is in use by ${proc} (pid ${pid}) running outside the cage ` +
    `(${lock} -> ${target}); in the cage that process is invisible, so ${browser.name} would take the lock for stale ` +
    `and open the profile a second time (corrupting it) or hand the page to the browser outside the tunnel. ` +
    `Close that browser first, or give the caged one another profile: --user-data-dir=DIR`
  );
}

// ---------------------------------------------------------------------------------------------
// Firefox

interface IniSection {
  name: string;
  keys: Map<string, string>;
}

function parseIni(text: string): IniSection[] {
  const out: IniSection[] = [];
  let cur: IniSection | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const s = /^\[(.*)\]$/.exec(line);
    if (s) {
      cur = { name: s[1]!, keys: new Map() };
      out.push(cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (cur !== null && eq > 0) cur.keys.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

/** The profile root Firefox uses: the legacy dot-dir while it exists, else the XDG one (Firefox 147+). */
function firefoxRoot(browser: Browser, env: NodeJS.ProcessEnv): string {
  const legacy = join(home(env), browser.dir);
  if (existsSync(legacy) || browser.xdgDir === undefined) return legacy;
  const xdg = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home(env), '.config');
  return join(xdg, browser.xdgDir);
}

/**
 * The candidate profiles of a Firefox run without --profile: the `[Install<hash>]` default of this
 * installation (the hash is CityHash64 of the install directory, see firefoxInstallHash); when no
 * section matches (a wrapper script we could not see through), every install's default, so a
 * running one is not missed; without any, the legacy `[Profile*]` marked Default=1 (Firefox may then
 * make a new dedicated profile instead, but it may as well claim that one).
 */
function firefoxDefaultProfiles(browser: Browser & { path: string | null }, args: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const root = firefoxRoot(browser, env);
  let sections: IniSection[];
  try {
    sections = parseIni(readFileSync(join(root, 'profiles.ini'), 'utf8'));
  } catch {
    return []; // no profiles yet: Firefox will make a new one
  }
  const pathOf = (s: IniSection): string | null => {
    const p = s.keys.get('Path');
    if (p === undefined || p === '') return null;
    return s.keys.get('IsRelative') === '0' ? p : join(root, p);
  };
  const profiles = sections.filter((s) => /^Profile\d+$/.test(s.name));
  // -P NAME: the profile of that name.
  const byName = namedProfileArg(args);
  if (byName !== null) {
    const p = profiles.find((s) => s.keys.get('Name') === byName);
    return p && pathOf(p) ? [pathOf(p)!] : [];
  }
  const installs = sections.filter((s) => /^Install[0-9A-Fa-f]+$/.test(s.name) && s.keys.get('Default'));
  const installDefault = (s: IniSection): string => {
    const d = s.keys.get('Default')!;
    return isAbsolute(d) ? d : join(root, d);
  };
  if (installs.length > 0) {
    if (browser.path !== null) {
      const hash = firefoxInstallHash(dirname(browser.path));
      const mine = installs.find((s) => s.name.slice('Install'.length).toUpperCase() === hash);
      if (mine) return [installDefault(mine)];
    }
    return installs.map(installDefault);
  }
  const legacy = profiles.find((s) => s.keys.get('Default') === '1');
  const p = legacy ? pathOf(legacy) : null;
  return p ? [p] : [];
}

/** `-P NAME` / `--P NAME` (Firefox flags are case-insensitive, `-p` too); null when not given. */
function namedProfileArg(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    if (/^--?p$/i.test(args[i]!) && args[i + 1] !== undefined && !args[i + 1]!.startsWith('-')) return args[i + 1]!;
  }
  return null;
}

/** `-profile DIR`, `--profile DIR`, `--profile=DIR` (case-insensitive, as Firefox reads them); null when absent. */
function profileArg(args: readonly string[], env: NodeJS.ProcessEnv): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = /^--?profile=(.+)$/is.exec(a);
    if (eq) return absolute(eq[1]!, env);
    if (/^--?profile$/i.test(a) && args[i + 1] !== undefined) return absolute(args[i + 1]!, env);
  }
  return null;
}

function firefoxLock(browser: Browser, dir: string): string | null {
  const lock = join(dir, 'lock');
  let target: string | null;
  let pid: number | null = null;
  try {
    target = readlinkSync(lock);
    const m = /^(.*):\+(\d+)$/.exec(target);
    if (m) pid = Number(m[2]);
  } catch {
    target = null;
  }
  let proc = pid === null ? null : liveProcess(pid, LOOKS_LIKE.firefox);
  let what = `${lock} -> ${target}`;
  if (proc === null) {
    // No live holder by the symlink: the fcntl lock on .parentlock is the other half of Firefox's
    // lock. Node has no fcntl(F_GETLK), but /proc/locks lists every POSIX lock with its holder.
    const holder = parentlockHolder(dir);
    if (holder !== null) {
      proc = liveProcess(holder, LOOKS_LIKE.firefox);
      if (proc !== null) {
        pid = holder;
        what = `${join(dir, '.parentlock')} locked`;
      }
    }
  }
  if (proc === null || pid === null) return null;
  return (
    `the ${browser.name} profile ${dir} is in use by ${proc} (pid ${pid}) running outside the cage ` +
    `(${what}); in the cage that process is invisible, so ${browser.name} would take the lock for stale and ` +
    `hand the page to the browser outside the tunnel, or open the profile a second time. ` +
    `Close that browser first, or give the caged one another profile: --profile DIR (an existing directory)`
  );
}

/** The pid holding a POSIX (fcntl) lock on DIR/.parentlock, from /proc/locks; null if none. */
function parentlockHolder(dir: string): number | null {
  let st: { dev: number; ino: number };
  let locks: string;
  try {
    st = statSync(join(dir, '.parentlock'));
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return null;
  }
  // 1: POSIX  ADVISORY  WRITE 4775 08:01:1234567 0 EOF  (device major:minor in hex, inode in decimal)
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
  for (const line of locks.split('\n')) {
    const m = /^\d+:\s+POSIX\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m) continue;
    if (parseInt(m[2]!, 16) === major && parseInt(m[3]!, 16) === minor && Number(m[4]) === st.ino && Number(m[1]) > 0) return Number(m[1]);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------

/** "chromium" (its comm or exe name) when `pid` is alive and looks like the browser; null otherwise. */
function liveProcess(pid: number, looksLike: RegExp): string | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  let comm: string;
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null; // gone
  }
  try {
    // Zombies hold no lock any more.
    if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return null;
  } catch {
    return null;
  }
  if (looksLike.test(comm)) return comm;
  let exe = '';
  try {
    exe = basename(readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ''));
  } catch {
    // another user's process, or not dumpable: comm is all there is
  }
  return exe !== '' && looksLike.test(exe) ? exe : null;
}

/**
 * Firefox's install hash (the `[Install<hash>]` sections of profiles.ini): CityHash64 (v1.0, as
 * Mozilla vendors it) of the install directory's path in UTF-16LE, as 16 upper-case hex digits.
 */
export function firefoxInstallHash(installDir: string): string {
  return cityHash64(Buffer.from(installDir, 'utf16le')).toString(16).toUpperCase().padStart(16, '0');
}

const M64 = (1n << 64n) - 1n;
const K0 = 0xc3a5c85c97cb3127n;
const K1 = 0xb492b66fbe98f273n;
const K2 = 0x9ae16a3b2f90404fn;
const K3 = 0xc949d7c7509e6557n;
const mul = (a: bigint, b: bigint): bigint => (a * b) & M64;
const add = (...xs: bigint[]): bigint => xs.reduce((s, x) => (s + x) & M64, 0n);
const sub = (a: bigint, b: bigint): bigint => (a - b) & M64;
const rot = (v: bigint, s: number): bigint => (s === 0 ? v : ((v >> BigInt(s)) | (v << BigInt(64 - s))) & M64);
const shiftMix = (v: bigint): bigint => v ^ (v >> 47n);

function hashLen16(u: bigint, v: bigint): bigint {
  const kMul = 0x9ddfea08eb382d69n;
  let a = mul(u ^ v, kMul);
  a ^= a >> 47n;
  let b = mul(v ^ a, kMul);
  b ^= b >> 47n;
  return mul(b, kMul);
}

// eslint-disable-next-line max-lines-per-function -- a line-by-line transcription of CityHash64 v1.0, checked against it as one text
function cityHash64(buf: Buffer): bigint {
  const f64 = (i: number): bigint => buf.readBigUInt64LE(i);
  const f32 = (i: number): bigint => BigInt(buf.readUInt32LE(i));
  const len = buf.length;
  const L = BigInt(len);
  if (len <= 16) {
    if (len > 8) {
      const a = f64(0);
      const b = f64(len - 8);
      return hashLen16(a, rot(add(b, L), len)) ^ b;
    }
    if (len >= 4) return hashLen16(add(L, (f32(0) << 3n) & M64), f32(len - 4));
    if (len > 0) {
      const y = BigInt(buf[0]!) + (BigInt(buf[len >> 1]!) << 8n);
      const z = L + (BigInt(buf[len - 1]!) << 2n);
      return mul(shiftMix(mul(y, K2) ^ mul(z, K3)), K2);
    }
    return K2;
  }
  if (len <= 32) {
    const a = mul(f64(0), K1);
    const b = f64(8);
    const c = mul(f64(len - 8), K2);
    const d = mul(f64(len - 16), K0);
    return hashLen16(add(rot(sub(a, b), 43), rot(c, 30), d), add(sub(add(a, rot(b ^ K3, 20)), c), L));
  }
  if (len <= 64) {
    let z = f64(24);
    let a = add(f64(0), mul(add(L, f64(len - 16)), K0));
    let b = rot(add(a, z), 52);
    let c = rot(a, 37);
    a = add(a, f64(8));
    c = add(c, rot(a, 7));
    a = add(a, f64(16));
    const vf = add(a, z);
    const vs = add(b, rot(a, 31), c);
    a = add(f64(16), f64(len - 32));
    z = f64(len - 8);
    b = rot(add(a, z), 52);
    c = rot(a, 37);
    a = add(a, f64(len - 24));
    c = add(c, rot(a, 7));
    a = add(a, f64(len - 16));
    const wf = add(a, z);
    const ws = add(b, rot(a, 31), c);
    const r = shiftMix(add(mul(add(vf, ws), K2), mul(add(wf, vs), K0)));
    return mul(shiftMix(add(mul(r, K0), vs)), K2);
  }
  const weak = (p: number, a: bigint, b: bigint): [bigint, bigint] => {
    const w = f64(p);
    const x = f64(p + 8);
    const y = f64(p + 16);
    const z = f64(p + 24);
    a = add(a, w);
    b = rot(add(b, a, z), 21);
    const c = a;
    a = add(a, x, y);
    b = add(b, rot(a, 44));
    return [add(a, z), add(b, c)];
  };
  let x = f64(0);
  let y = f64(len - 16) ^ K1;
  let z = f64(len - 56) ^ K0;
  let v = weak(len - 64, L, y);
  let w = weak(len - 32, mul(L, K1), K0);
  z = add(z, mul(shiftMix(v[1]), K1));
  x = mul(rot(add(z, x), 39), K1);
  y = mul(rot(y, 33), K1);
  let n = (len - 1) & ~63;
  let s = 0;
  do {
    x = mul(rot(add(x, y, v[0], f64(s + 16)), 37), K1);
    y = mul(rot(add(y, v[1], f64(s + 48)), 42), K1);
    x ^= w[1];
    y ^= v[0];
    z = rot(z ^ w[0], 33);
    v = weak(s, mul(v[1], K1), add(x, w[0]));
    w = weak(s + 32, add(z, w[1]), y);
    [z, x] = [x, z];
    s += 64;
    n -= 64;
  } while (n !== 0);
  return hashLen16(add(hashLen16(v[0], w[0]), mul(shiftMix(y), K1), z), add(hashLen16(v[1], w[1]), x));
}

/**
 * When `command` starts a known browser (Chromium, Chrome, Brave, Edge, Vivaldi; Firefox, Firefox
 * ESR, LibreWolf...) whose profile is locked by that browser running outside the cage on this host,
 * a one-line message that names the lock, the pid and what to do; otherwise null. Call it before
 * the cage is built, as the caller, with the command's environment (HOME, PATH, XDG_CONFIG_HOME)
 * and working directory (relative profile paths).
 */
export function browserProfileInUse(command: string[], env: NodeJS.ProcessEnv): string | null {
  const program = command[0];
  if (program === undefined || program === '') return null;
  const browser = identify(program, env);
  if (browser === null) return null;
  const args = command.slice(1);
  if (browser.family === 'chromium') {
    const dir = chromiumUserDataDir(browser, args, env);
    return dir === null ? null : chromiumLock(browser, dir);
  }
  const explicit = profileArg(args, env);
  for (const dir of explicit !== null ? [explicit] : firefoxDefaultProfiles(browser, args, env)) {
    const msg = firefoxLock(browser, dir);
    if (msg !== null) return msg;
  }
  return null;
}
