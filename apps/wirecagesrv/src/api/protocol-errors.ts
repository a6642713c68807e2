// The answers node:http gives by itself, before or instead of the API's
// handler, made JSON errors like every other answer of the API: a request it
// cannot parse (400; headers too large 431), one that does not arrive within
// the timeouts (408), CONNECT (which node:http answers by hanging up), an
// Expect it cannot meet (417), and an HTTP/1.1 request without Host (400,
// which node:http sends with an empty body).
import { STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { sendJson } from './json.js';

/** The bytes of a whole JSON error answer, for a socket node:http no longer writes to; the connection closes after it. */
export function rawJsonError(status: number, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ error: message });
  const more = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `cache-control: no-store\r\n${more}connection: close\r\n\r\n${body}`
  );
}

/** The status and message for a node:http client error (llhttp's HPE_* codes, or the request timeout). */
export function clientErrorAnswer(err: NodeJS.ErrnoException & { reason?: string }): [number, string] {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'the request did not arrive in time; send it whole, without pauses'];
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'the request line and headers are too large'];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return [413, 'the chunk extensions of the request body are too large'];
    default:
      return [400, `malformed HTTP request${err.reason ? `: ${err.reason}` : ''}`];
  }
}

const answered = new WeakSet<Duplex>();

/** Writes `text` and closes the connection, once per socket (a broken parser reports each later chunk again). */
function answerAndClose(socket: Duplex, text: string): void {
  if (answered.has(socket)) return;
  answered.add(socket);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Closed for good once written: whatever the client still sends is not read.
  socket.once('finish', () => socket.destroy());
  socket.end(text);
}

function onClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
    socket.destroy();
    return;
  }
  const [status, message] = clientErrorAnswer(err);
  const text = rawJsonError(status, message);
  // node:http's own rule: an answer under way must not be corrupted; one not begun is replaced.
  const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!res) return answerAndClose(socket, text);
  if (res.headersSent) {
    socket.destroy();
    return;
  }
  // The request being answered arrived whole, so the error is about what came after it (a
  // pipelined request): its answer goes first. One still arriving is the request at fault.
  if ((res.req as IncomingMessage | undefined)?.complete && !res.writableFinished) {
    res.once('finish', () => answerAndClose(socket, text));
    res.once('close', () => !res.writableFinished && socket.destroy());
    return;
  }
  answerAndClose(socket, text);
}

/** Installs the JSON answers on `server`, which must be created with `requireHostHeader: false` (see requireHost). */
export function answerProtocolErrors(server: Server): void {
  server.on('clientError', onClientError);
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    answerAndClose(
      socket,
      rawJsonError(405, `${req.method} is not served here: the API answers GET, HEAD, POST and DELETE`, {
        allow: 'GET, HEAD, POST, DELETE',
      }),
    );
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    sendJson(res, 417, { error: `cannot meet "Expect: ${String(req.headers.expect).slice(0, 64)}"; only 100-continue is understood` });
  });
}

/** `handler`, after the check node:http makes when `requireHostHeader` is on, answered as JSON. */
export function requireHost(handler: RequestListener): RequestListener {
  return (req, res) => {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) {
      sendJson(res, 400, { error: 'an HTTP/1.1 request needs a Host header' }, { connection: 'close' });
      return;
    }
    handler(req, res);
  };
}
