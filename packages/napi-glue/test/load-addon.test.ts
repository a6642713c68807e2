import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describeErrno, loadAddon } from '../src/index.js';

class ExampleError extends Error {
  constructor(errno: number, syscall: string) {
    super(`${syscall} failed: ${errno}`);
  }
}

describe('loadAddon', () => {
  it('names the package and how to get an addon when there is none', () => {
    // This package builds no addon: neither build/ nor prebuilds/ holds one.
    const root = fileURLToPath(new URL('..', import.meta.url));
    assert.throws(
      () => loadAddon('@wirecage/example', root, ExampleError),
      (err: Error) => {
        assert.match(err.message, /^@wirecage\/example: no native addon for this machine; reinstall the package/);
        assert.ok(err.message.includes('`npm run build` in packages/napi-glue of a checkout ('), err.message);
        assert.ok(err.cause instanceof Error);
        return true;
      },
    );
  });
});

describe('describeErrno', () => {
  it("names an errno as libuv does, Linux's own that libuv lacks, and any other by number", () => {
    assert.deepEqual(describeErrno(1), ['EPERM', 'operation not permitted']);
    assert.deepEqual(describeErrno(77), ['EBADFD', 'file descriptor in bad state (the interface was deleted)']);
    assert.deepEqual(describeErrno(9999), ['E9999', 'error 9999']);
  });
});
