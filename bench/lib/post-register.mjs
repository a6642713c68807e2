// One POST /v1/register with a fresh random key, for the load generators
// (register-load.mjs, fleet-load.mjs). The API checks only the key's form:
// 32 random bytes cost no curve arithmetic on this side. Never rejects:
// resolves { key, status, text } for an answer, { key, error } for a failure.
import { randomBytes } from 'node:crypto';
import http from 'node:http';

export function postRegister(url, agent, token) {
  const key = randomBytes(32).toString('base64');
  const body = JSON.stringify({ client_public_key: key });
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ key, status: res.statusCode, text }));
    });
    req.on('error', (err) => resolve({ key, error: err.message }));
    req.end(body);
  });
}
