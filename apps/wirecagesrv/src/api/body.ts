// Request bodies: JSON only, bounded in size before and while they are read,
// so a client cannot make the server buffer more than the limit.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT = 16 * 1024;

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
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
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

function tooLarge(limit: number): HttpError {
  // Connection: close, since the rest of the body is not read.
  return new HttpError(413, `the request body is larger than ${limit} bytes`, { connection: 'close' });
}
