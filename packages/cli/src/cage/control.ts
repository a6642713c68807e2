// A named cage's control socket: `<NAME>.ctl` in the per-user runtime dir
// (runtime-dir.ts: 0700, checked to be the user's own), served by stage 2.
// Whoever connects is checked with SO_PEERCRED: only the uid that started the
// cage (as stage 2's user namespace sees it: any other uid shows as another
// id, or as the overflow uid 65534) is answered; anyone else gets a refusal
// and the connection is closed. The directory's mode already keeps others
// out: this check is the second lock, and holds for root, who passes modes.
//
// Protocol: one request per connection, a JSON line, answered by a JSON line.
//   {"op":"join"}  -> {"ok":true, "pid":P, "ns":{...}, ...}: where to setns,
//                     what the seal is. The connection then stays open for
//                     as long as the joined command runs (wirecage-join holds
//                     it): that is how the cage counts the session, and why
//                     a cage does not end between a join and the command's
//                     first fork.
//   {"op":"stop","timeout":S} -> {"ok":true} once no process is left in the
//                     cage (SIGTERM to each, SIGKILL after S seconds); the
//                     connection ends when stage 2 has cleaned up and exits.
//   {"op":"flows"} -> {"ok":true,"flows":[...]}: the cage's conntrack table now
//                     (flows.ts; only with --flow-log, else a refusal saying so).
//   anything else  -> {"ok":false,"error":"..."}
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { WirecageError } from '../errors.js';
import type { LiveFlow } from './flows-format.js';

export interface JoinSeal {
  dropCapabilities: boolean;
  sshAgent: boolean;
  gui: boolean;
  audio: boolean;
  /** Host paths the cage shares (--share and the others): variables naming them are kept. */
  shares: string[];
  /** Ids the first command runs as in the cage's user namespace (started as root with --user), else none. */
  user?: { uid: number; gid: number; groups: number[] };
}

export interface JoinGrant {
  ok: true;
  /** Host pid of the process whose namespaces a command joins (the cage's holder). */
  pid: number;
  /** Inodes of its namespaces: a joiner checks them after opening its pidfd (no pid reuse). */
  ns: { user: number; mnt: number; net: number; pid: number };
  name: string;
  tun: string;
  seal: JoinSeal;
}

export type ControlRequest = { op: 'join' } | { op: 'stop'; timeout: number } | { op: 'flows' };
export type ControlReply = JoinGrant | { ok: true; flows: LiveFlow[] } | { ok: true } | { ok: false; error: string };

export interface ControlHandlers {
  /** The grant, or why not (the cage is ending). */
  join(): JoinGrant | string;
  /** A joined session's connection closed. */
  sessionEnded(): void;
  /** Ends every process in the cage; resolves once none is left. */
  stop(timeoutSeconds: number): Promise<void>;
  /** The cage's flows now, or why not (conntrack is off in it); without it, the cage has none to give. */
  flows?(): Promise<LiveFlow[] | string>;
}

const MAX_REQUEST = 4096;

function fdOf(socket: Socket): number | undefined {
  // Node keeps a connected unix socket's fd on its handle; it has no public getter.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function reply(socket: Socket, r: ControlReply, end = false): void {
  const line = `${JSON.stringify(r)}\n`;
  if (end) socket.end(line);
  else socket.write(line);
}

/** Listens on `path` (a stale socket there is removed: the caller holds the name's lock). */
export async function serveControl(path: string, handlers: ControlHandlers): Promise<{ close(): Promise<void> }> {
  const { peerCredentials } = await import('@wirecage/netns');
  const owner = process.getuid?.() ?? 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const uid = peerUid(socket, peerCredentials);
    if (uid !== owner) {
      reply(
        socket,
        { ok: false, error: `refused: only the user who started this cage may join or stop it (you are uid ${uid ?? '?'} here)` },
        true,
      );
      return;
    }
    onRequestLine(socket, (line) => handleRequest(socket, line, handlers));
  });
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        rmSync(path, { force: true });
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The connecting process's uid as SO_PEERCRED gives it, or null when it cannot be read. */
function peerUid(socket: Socket, peerCredentials: (fd: number) => { uid: number }): number | null {
  const fd = fdOf(socket);
  try {
    return fd === undefined ? null : peerCredentials(fd).uid;
  } catch {
    return null;
  }
}

/** Calls `onLine` with the request's line once it is in; a longer request than MAX_REQUEST is refused. */
function onRequestLine(socket: Socket, onLine: (line: string) => void): void {
  let buffer = '';
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const nl = buffer.indexOf('\n');
    if (nl < 0) {
      if (buffer.length > MAX_REQUEST) reply(socket, { ok: false, error: 'request too long' }, true);
      return;
    }
    socket.off('data', onData);
    onLine(buffer.slice(0, nl));
  };
  socket.on('data', onData);
}

function handleRequest(socket: Socket, line: string, handlers: ControlHandlers): void {
  let req: ControlRequest;
  try {
    req = JSON.parse(line) as ControlRequest;
  } catch {
    reply(socket, { ok: false, error: 'a request is one JSON line' }, true);
    return;
  }
  if (req?.op === 'join') {
    const grant = handlers.join();
    if (typeof grant === 'string') {
      reply(socket, { ok: false, error: grant }, true);
      return;
    }
    socket.once('close', () => handlers.sessionEnded());
    reply(socket, grant);
  } else if (req?.op === 'stop' && typeof req.timeout === 'number' && req.timeout >= 0) {
    handlers.stop(req.timeout).then(
      () => reply(socket, { ok: true }),
      (err: Error) => reply(socket, { ok: false, error: err.message }, true),
    );
  } else if (req?.op === 'flows') {
    (handlers.flows?.() ?? Promise.resolve('this cage tracks no flows')).then(
      (flows) => reply(socket, typeof flows === 'string' ? { ok: false, error: flows } : { ok: true, flows }, true),
      (err: Error) => reply(socket, { ok: false, error: err.message }, true),
    );
  } else {
    reply(socket, { ok: false, error: `unknown request ${JSON.stringify(line.slice(0, 100))}` }, true);
  }
}

/** A request from `wirecage exec` or `stop`: the reply and the still open connection (and its fd). */
export async function controlRequest(
  path: string,
  name: string,
  req: ControlRequest,
): Promise<{ reply: ControlReply; socket: Socket; fd: number }> {
  const socket = createConnection(path);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  } catch (err) {
    socket.destroy();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED')
      throw new WirecageError(`no cage named ${name} is running (wirecage ps lists the cages)`);
    throw new WirecageError(`cannot reach the cage ${name} at ${path}: ${code ?? (err as Error).message}`);
  }
  socket.write(`${JSON.stringify(req)}\n`);
  const line = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.pause();
        resolve(buffer.slice(0, nl));
      }
    };
    const onEnd = () => reject(new WirecageError(`the cage ${name} closed its control socket without answering`));
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', reject);
  });
  const fd = fdOf(socket);
  if (fd === undefined) throw new WirecageError('the control connection has no fd');
  let parsed: ControlReply;
  try {
    parsed = JSON.parse(line) as ControlReply;
  } catch {
    throw new WirecageError(`the cage ${name} answered something that is not JSON`);
  }
  return { reply: parsed, socket, fd };
}
