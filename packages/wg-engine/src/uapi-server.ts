// Serves the UAPI on a unix socket at /var/run/wireguard/<name>.sock (the
// path `wg` looks in), so the unmodified `wg show/set/showconf` work against
// the engine. Requests are handled one at a time per connection.
import { mkdirSync, unlinkSync, chmodSync, lstatSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Device } from './device.js';
import { UAPI_EINVAL, UAPI_EIO, UapiError, uapiGet, uapiSet, type UapiHooks } from './uapi.js';

export const DEFAULT_UAPI_DIR = '/var/run/wireguard';
const MAX_REQUEST_BYTES = 1 << 20;

export interface UapiServerOptions extends UapiHooks {
  /** Directory of the socket; default /var/run/wireguard. */
  dir?: string;
  /** Full socket path, instead of <dir>/<name>.sock. */
  path?: string;
}

export class UapiServer {
  private constructor(
    readonly socketPath: string,
    private readonly server: net.Server,
  ) {}

  static async listen(device: Device, name: string, opts: UapiServerOptions = {}): Promise<UapiServer> {
    if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(name)) throw new Error(`interface name "${name}" is not valid (1-15 of A-Z a-z 0-9 _=+.-)`);
    const socketPath = opts.path ?? path.join(opts.dir ?? DEFAULT_UAPI_DIR, `${name}.sock`);
    mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    await removeStaleSocket(socketPath);
    const server = net.createServer((conn) => serve(device, conn, opts));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Only the owner may read keys or reconfigure the device.
    chmodSync(socketPath, 0o600);
    return new UapiServer(socketPath, server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      try {
        unlinkSync(this.socketPath);
      } catch {
        // already gone
      }
    });
  }
}

async function removeStaleSocket(p: string): Promise<void> {
  try {
    if (!lstatSync(p).isSocket()) throw new Error(`${p} exists and is not a socket; refusing to replace it`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  // A socket somebody answers on belongs to a live device; one nobody answers on is left over from a crash.
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${p} is in use by another running device`);
  unlinkSync(p);
}

function serve(device: Device, conn: net.Socket, hooks: UapiHooks): void {
  let buf = '';
  let busy = false;
  conn.setEncoding('utf8');
  conn.on('error', () => conn.destroy());

  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        const end = buf.indexOf('\n\n');
        if (end < 0) break;
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        conn.write(await handle(device, block.split('\n'), hooks));
      }
      if (buf.length > MAX_REQUEST_BYTES) {
        conn.end(`errno=${UAPI_EINVAL}\n\n`);
      }
    } finally {
      busy = false;
    }
  };
  conn.on('data', (chunk: string) => {
    buf += chunk;
    void pump();
  });
}

async function handle(device: Device, lines: string[], hooks: UapiHooks): Promise<string> {
  const op = lines[0];
  try {
    if (op === 'get=1') {
      if (lines.length > 1) throw new UapiError(UAPI_EINVAL, 'get=1 takes no arguments');
      return `${uapiGet(device)}errno=0\n\n`;
    }
    if (op === 'set=1') {
      await uapiSet(device, lines.slice(1), hooks);
      return 'errno=0\n\n';
    }
    throw new UapiError(UAPI_EINVAL, `unknown operation "${op}"`);
  } catch (err) {
    const errno = err instanceof UapiError ? err.errno : err instanceof Error && err.name === 'KeyFormatError' ? UAPI_EINVAL : UAPI_EIO;
    device.logger.info(`uapi: ${(err as Error).message}`);
    return `errno=${errno}\n\n`;
  }
}

/** Sends one UAPI request (e.g. "get=1\n\n") to a socket and resolves with the whole answer. */
export function uapiRequest(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      out += d;
      // Every answer ends with "errno=N" and a blank line.
      if (/(^|\n)errno=\d+\n\n$/.test(out)) {
        c.end();
        resolve(out);
      }
    });
    c.on('error', reject);
    c.on('close', () => reject(new Error(`${socketPath} closed before a complete answer`)));
    c.write(request);
  });
}
