import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchStage2, pipe } from '../src/index.js';
import type { ProbeReport } from './fixtures/stage2-probe.js';
import { readAll } from './lab.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const PROBE = fixture('stage2-probe.ts');
// The probe is TypeScript: tsx loads it. This is also the whole environment it gets.
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: '--import=tsx' };

/** Runs the probe in "report" mode with `files`' contents on the extra fds; returns its report. */
async function report(contents: string[], options: { userNamespace: boolean }) {
  const dir = mkdtempSync(join(tmpdir(), 'wcs2-'));
  const fds: number[] = [];
  try {
    contents.forEach((text, i) => {
      writeFileSync(join(dir, `f${i}`), text);
      fds.push(openSync(join(dir, `f${i}`), 'r'));
    });
    const [r, w] = pipe();
    fds.push(w);
    const spec = { mode: 'report', read: contents.length, payload: { key: 'k'.repeat(100_000), list: [1, null, 'x'] } };
    let code;
    try {
      code = launchStage2({ script: PROBE, spec, env: ENV, extraFds: fds, userNamespace: options.userNamespace });
    } finally {
      // Stage 2 holds its copies: ours go at once, as wirecagesrv's bound sockets do.
      fds.forEach((fd) => closeSync(fd));
    }
    const [status, out] = await Promise.all([code, readAll(r)]);
    assert.equal(status, 0);
    return { spec, got: JSON.parse(out) as ProbeReport };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves with the child's stdout once it contains `line`; rejects if the child exits first or time runs out. */
function waitForLine(child: ChildProcess, out: { text: string }, line: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (out.text.split('\n').includes(line)) done(resolve);
    };
    const exited = () =>
      done(() => reject(new Error(`exited before printing ${JSON.stringify(line)}; stdout: ${JSON.stringify(out.text)}`)));
    const timer = setTimeout(
      () => done(() => reject(new Error(`no ${JSON.stringify(line)} within ${ms} ms; stdout: ${JSON.stringify(out.text)}`))),
      ms,
    );
    const done = (then: () => void) => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', exited);
      then();
    };
    child.stdout!.on('data', check);
    child.once('exit', exited);
    check();
  });
}

describe('launchStage2', function () {
  this.timeout(30_000);

  it('hands stage 2 the spec on fd 3 and the extra fds in order, as root of a new user namespace mapping every id (run as root)', async () => {
    const { spec, got } = await report(['first', 'second'], { userNamespace: true });
    assert.deepEqual(got.spec, spec, 'a spec larger than a pipe buffer arrives whole');
    assert.deepEqual(got.extra, ['first', 'second']);
    assert.equal(got.uid, 0);
    assert.equal(got.uidMap, '0 0 4294967295');
    assert.notEqual(got.userns, readlinkSync('/proc/self/ns/user'));
    assert.deepEqual(got.env, ['NODE_OPTIONS', 'PATH']);
  });

  it('runs stage 2 here, as this process, without a user namespace', async () => {
    const { got } = await report(['only'], { userNamespace: false });
    assert.deepEqual(got.extra, ['only']);
    assert.equal(got.userns, readlinkSync('/proc/self/ns/user'));
  });

  for (const userNamespace of [true, false]) {
    it(`returns stage 2's exit code, and 128 + N for death by signal N (${userNamespace ? 'user namespace' : 'none'})`, async () => {
      const run = (spec: object) => launchStage2({ script: PROBE, spec, env: ENV, userNamespace });
      assert.equal(await run({ mode: 'exit', code: 7 }), 7);
      assert.equal(await run({ mode: 'exit', code: 0 }), 0);
      assert.equal(await run({ mode: 'kill', signal: 'SIGTERM' }), 143);
      assert.equal(await run({ mode: 'kill', signal: 'SIGKILL' }), 137);
    });
  }

  for (const mode of ['userns', 'plain']) {
    it(`forwards the signals asked for, holds back the ones skipSignal names, and a forwarded SIGTERM gives 143 (${mode})`, async () => {
      const driver = spawn(process.execPath, ['--import', 'tsx', fixture('stage2-driver.ts'), mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const out = { text: '' };
      driver.stdout.setEncoding('utf8').on('data', (chunk: string) => (out.text += chunk));
      const exited = once(driver, 'exit');
      try {
        await waitForLine(driver, out, 'ready');
        // Skipped, then forwarded: had SIGHUP gone through, stage 2 would have printed it first.
        driver.kill('SIGHUP');
        driver.kill('SIGUSR2');
        await waitForLine(driver, out, 'got SIGUSR2');
        driver.kill('SIGTERM');
        await waitForLine(driver, out, 'exit 143');
        assert.deepEqual(out.text.trim().split('\n'), ['ready', 'got SIGUSR2', 'exit 143']);
        assert.deepEqual(await exited, [0, null]);
      } finally {
        driver.kill('SIGKILL'); // stage 2 dies with it (userns) or notices being orphaned
      }
    });
  }

  it('rejects a spec that is not JSON and extra fds that are not fds', () => {
    assert.throws(() => launchStage2({ script: PROBE, spec: undefined }), /must be a JSON value/);
    assert.throws(() => launchStage2({ script: PROBE, spec: {}, extraFds: [-1] }), /extraFds: -1 is not an fd/);
  });
});

describe('execStage2', function () {
  this.timeout(30_000);

  /** A stage 1 that becomes stage 2 at once; returns how it ended. */
  async function execProbe(spec: object) {
    const script = `const m = await import(${JSON.stringify(fileURLToPath(new URL('../src/index.ts', import.meta.url)))});
      m.execStage2({ script: ${JSON.stringify(PROBE)}, spec: ${JSON.stringify(spec)}, env: ${JSON.stringify(ENV)} });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    return (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  }

  it("becomes stage 2, which reads its spec (a memfd) and whose status is this process's", async () => {
    assert.deepEqual(await execProbe({ mode: 'exit', code: 9 }), [9, null]);
    // The helper dies of the signal that killed stage 2: the caller sees the signal itself.
    assert.deepEqual(await execProbe({ mode: 'kill', signal: 'SIGTERM' }), [null, 'SIGTERM']);
  });
});

describe('readSpec', function () {
  this.timeout(30_000);

  /** Runs the probe with `fd3` as its fd 3 ('ignore': none), writing `input` to it if a pipe. */
  async function probe(fd3: 'pipe' | 'ignore', input = ''): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', PROBE], { stdio: ['ignore', 'ignore', 'pipe', fd3] });
    if (fd3 === 'pipe') {
      const w = child.stdio[3] as NodeJS.WritableStream;
      w.on('error', () => {}); // a probe that refused its fd 3 exits before reading it
      w.end(input);
    }
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stderr };
  }

  it('says so when nothing was given on fd 3', async () => {
    const r = await probe('ignore');
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /^SpecError: no spec on fd 3: it is (not a pipe, socket or file|not open \(EBADF\)); start this script with launchStage2 or execStage2\n$/,
    );
  });

  it('says so when fd 3 does not hold JSON', async () => {
    const r = await probe('pipe', '{"mode": "exit", ');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^SpecError: the spec on fd 3 is not JSON \(/);
  });

  it('reads a spec written by hand (the wire format is plain JSON)', async () => {
    const r = await probe('pipe', '{"mode": "exit", "code": 5}');
    assert.equal(r.code, 5, r.stderr);
  });
});
