// Request bodies: JSON only, bounded in size before and while they are read,
// so a client cannot make the server buffer more than the limit.
//
// A body over the limit is answered 413 at once, and the rest of it is read
// and dropped (up to LINGER_BYTES more): a client still sending would
// otherwise meet a reset on its next write and never read the answer.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT = 16 * 1024;
/** How much more of a refused body is read and dropped before the connection is cut. */
export const LINGER_BYTES = 1024 * 1024;

export function isJson(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json';
}

/** The parsed JSON object of the body; HttpError 415, 413 or 400 otherwise. */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  return (await readJsonBody(req, limit)).value;
}

/** The body's JSON object and its raw bytes (which a request proof covers). */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<{ value: Record<string, unknown>; raw: Buffer }> {
  if (!isJson(req)) throw new HttpError(415, 'the request body must be JSON (Content-Type: application/json)');
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(req, limit);
  const raw = await readBody(req, limit);
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'the request body must be a JSON object');
  }
  return { value: value as Record<string, unknown>, raw };
}

/**
 * The body, up to `limit` bytes. Read with listeners, not `for await`: leaving that loop early
 * destroys the request and its socket, and the 413 would never reach the client.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (req.destroyed) {
      reject(new HttpError(400, 'the request body ended before it was complete (the connection closed)'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (err: HttpError | null) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(tooLarge(req, limit));
      else chunks.push(chunk);
    };
    const onEnd = () => settle(null);
    // The client hung up (or timed out) before the whole body arrived: its fault, not the server's.
    const ended = (why: string) => settle(new HttpError(400, `the request body ended before it was complete (${why})`));
    const onError = (err: Error) => ended(err.message);
    const onClose = () => ended('the connection closed');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The 413 for `req`, whose body is from now on dropped as it comes; cut off past LINGER_BYTES. */
function tooLarge(req: IncomingMessage, limit: number): HttpError {
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) req.socket?.destroy();
  });
  req.resume();
  return new HttpError(413, `the request body is larger than ${limit} bytes`);
}
