// The shared key-proof test vector of packages/wg-engine/test/key-proof.test.ts,
// which defines the scheme; wirecage's signer produces this header
// (packages/cli/test/publish.test.ts), and the verifier must accept it.
import { parseKeyBase64 } from '@wirecage/wg-engine';
import { HttpError } from '../src/api/errors.js';

export const serverPrivate = parseKeyBase64('ICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiImI=');
export const serverPublic = parseKeyBase64('D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=');
export const CLIENT = 'e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=';
export const BODY = Buffer.from(
  '{"client_public_key":"e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=","protocol":"tcp","public_port":8080,"target_port":80}',
);
export const HEADER = '1700000000.BwcHBwcHBwcHBwcHBwcHBw.nFiwVz-dKtEFpsC7UvkZQfYJprDN3YE-4hjmH8zhISw';
export const req = { method: 'POST', path: '/v1/portforward', clientPublicKey: CLIENT, body: BODY };

/** The HTTP status a verification gives: 200, or the HttpError's. */
export async function status(f: () => Promise<void>): Promise<number> {
  try {
    await f();
    return 200;
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}
